import math

import torch


def attend(q, k, v, sm_scale, causal):
    """q [n_q, H, D], k/v [n_kv, KVH, D] -> (out [n_q, H, D], lse base 2 [n_q, H])."""
    heads, kv_heads = q.shape[1], k.shape[1]
    k = k.float().repeat_interleave(heads // kv_heads, 1)
    v = v.float().repeat_interleave(heads // kv_heads, 1)
    logits = torch.einsum("qhd,khd->hqk", q.float(), k) * sm_scale
    if causal:
        n_q, n_kv = q.shape[0], k.shape[0]
        mask = torch.arange(n_kv)[None, :] > torch.arange(n_q)[:, None] + (n_kv - n_q)
        logits = logits.masked_fill(mask, -math.inf)
    lse = (torch.logsumexp(logits, -1) / math.log(2.0)).T
    return torch.einsum("hqk,khd->qhd", torch.softmax(logits, -1), v).to(q.dtype), lse


def gather(cache, indices, start, end, last_len):
    pages = cache[indices[start:end].long()]
    n = (end - start - 1) * cache.shape[1] + last_len
    return pages.reshape(-1, *cache.shape[2:])[:n]


def unpack(paged_kv_cache, layout):
    k, v = paged_kv_cache if isinstance(paged_kv_cache, tuple) else (paged_kv_cache[:, 0], paged_kv_cache[:, 1])
    return (k.transpose(1, 2), v.transpose(1, 2)) if layout == "HND" else (k, v)
