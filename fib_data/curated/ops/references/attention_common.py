import math

import torch

#: Queries per block, so a long prefill never materialises the full [heads, q, kv] logits.
Q_BLOCK = 1024


def _attend(q, k, v, sm_scale, causal):
    """Softmax attention of one sequence in fp32.

    q: [n_q, H, D]; k: [n_kv, KVH, Dk]; v: [n_kv, KVH, Dv], KVH divides H (grouped-query).
    Causal masks are aligned bottom-right: query i sees keys j <= i + (n_kv - n_q), so a
    prefill chunk after a cached prefix sees the whole prefix. Returns the output [n_q, H, Dv]
    and the base-2 log-sum-exp of the scaled logits [n_q, H] (flashinfer's convention).
    """
    n_q, heads, _ = q.shape
    n_kv, kv_heads, _ = k.shape
    k = k.float().repeat_interleave(heads // kv_heads, dim=1)
    v = v.float().repeat_interleave(heads // kv_heads, dim=1)
    out = torch.zeros(n_q, heads, v.shape[-1], dtype=torch.float32, device=q.device)
    lse = torch.full((n_q, heads), -math.inf, dtype=torch.float32, device=q.device)
    if n_q == 0 or n_kv == 0:
        return out, lse
    for start in range(0, n_q, Q_BLOCK):
        qb = q[start:start + Q_BLOCK].float()
        logits = torch.einsum("qhd,khd->hqk", qb, k) * sm_scale
        if causal:
            rows = torch.arange(start, start + qb.shape[0], device=q.device)[:, None]
            cols = torch.arange(n_kv, device=q.device)[None, :]
            logits = logits.masked_fill(cols > rows + (n_kv - n_q), -math.inf)
        lse[start:start + qb.shape[0]] = (torch.logsumexp(logits, dim=-1) / math.log(2.0)).T
        out[start:start + qb.shape[0]] = torch.einsum("hqk,khd->qhd", torch.softmax(logits, -1), v)
    return out, lse


def _pages(cache, kv_indices, start, end, num_tokens):
    """The first num_tokens rows of the pages kv_indices[start:end] of a [pages, page_size, ...] cache."""
    pages = cache[kv_indices[start:end].long()]
    return pages.reshape(-1, *cache.shape[2:])[:num_tokens]
