"""Paged/ragged attention in plain torch: fp32 math, grouped heads without repeating K/V.

Decode gathers every sequence's KV into one padded batch (in chunks that bound the padded
size) and masks the padding; prefill loops over sequences with a bottom-right causal mask.
LSE is base 2, flashinfer's convention.
"""

import math

import torch

#: Padded K (or V) elements per decode chunk; bounds fp32 scratch to ~0.5 GiB per tensor.
CHUNK_ELEMENTS = 1 << 27
#: Query rows per prefill block.
Q_BLOCK = 1024


def _token_rows(kv_indptr, kv_indices, lens, page_size, max_len):
    """Row of each (sequence, position) in a [pages * page_size, ...] view of the cache."""
    pos = torch.arange(max_len, device=kv_indices.device)
    slot = kv_indptr[:-1, None].long() + pos[None, :] // page_size
    valid = pos[None, :] < lens[:, None]
    pages = kv_indices[slot.clamp(max=max(kv_indices.numel() - 1, 0))].long()
    return pages * page_size + pos[None, :] % page_size, valid


def _decode(qs, k_caches, v_cache, kv_indptr, kv_indices, lens, sm_scale):
    """Logits sum over the (query part, key cache) pairs, so MLA never concatenates its caches.

    q parts [B, H, d_i]; caches [pages, page_size, KVH, d]; lens [B] tokens per sequence.
    """
    B, H, _ = qs[0].shape
    pages, page_size, kv_heads, Dv = v_cache.shape
    width = sum(k.shape[-1] for k in k_caches) + Dv
    output = torch.zeros(B, H, Dv, dtype=qs[0].dtype, device=qs[0].device)
    lse = torch.full((B, H), -math.inf, dtype=torch.float32, device=output.device)
    max_len = int(lens.max()) if B else 0
    if max_len == 0:
        return output, lse
    step = max(1, CHUNK_ELEMENTS // (max_len * kv_heads * width))
    for b0 in range(0, B, step):
        b1 = min(B, b0 + step)
        rows, valid = _token_rows(kv_indptr[b0:b1 + 1], kv_indices, lens[b0:b1], page_size, max_len)
        logits = 0
        for q, cache in zip(qs, k_caches):
            k = cache.reshape(pages * page_size, kv_heads, -1)[rows].float()  # [b, L, KVH, d]
            qg = q[b0:b1].float().view(b1 - b0, kv_heads, H // kv_heads, -1)
            logits = logits + torch.einsum("bkgd,blkd->bkgl", qg, k)
        logits = (logits * sm_scale).masked_fill(~valid[:, None, None, :], -math.inf)
        lse_b = torch.logsumexp(logits, dim=-1)
        p = torch.exp(logits - lse_b[..., None]).nan_to_num(0.0)
        v = v_cache.reshape(pages * page_size, kv_heads, Dv)[rows].float()
        out = torch.einsum("bkgl,blkd->bkgd", p, v)
        output[b0:b1] = out.reshape(b1 - b0, H, Dv).to(output.dtype)
        lse[b0:b1] = (lse_b / math.log(2.0)).reshape(b1 - b0, H)
    return output, lse


def _causal(q, k, v, sm_scale, out, lse):
    """One sequence: q [n_q, H, D], k/v [n_kv, KVH, D]; queries are the last n_q positions."""
    n_q, H, D = q.shape
    n_kv, kv_heads, _ = k.shape
    if n_q == 0:
        return
    if n_kv == 0:
        out.zero_()
        lse.fill_(-math.inf)
        return
    G = H // kv_heads
    kt = k.float().permute(1, 2, 0)  # [KVH, D, n_kv]
    vt = v.float().permute(1, 0, 2)  # [KVH, n_kv, Dv]
    cols = torch.arange(n_kv, device=q.device)
    for s in range(0, n_q, Q_BLOCK):
        qb = q[s:s + Q_BLOCK].float()
        n = qb.shape[0]
        qg = qb.view(n, kv_heads, G, D).permute(1, 0, 2, 3).reshape(kv_heads, n * G, D)
        logits = torch.matmul(qg, kt).view(kv_heads, n, G, n_kv) * sm_scale
        rows = torch.arange(s, s + n, device=q.device) + (n_kv - n_q)
        logits = logits.masked_fill(cols[None, None, None, :] > rows[None, :, None, None], -math.inf)
        lse_b = torch.logsumexp(logits, dim=-1)  # [KVH, n, G]
        p = torch.exp(logits - lse_b[..., None]).nan_to_num(0.0)
        o = torch.matmul(p.view(kv_heads, n * G, n_kv), vt).view(kv_heads, n, G, -1)
        out[s:s + n] = o.permute(1, 0, 2, 3).reshape(n, H, -1).to(out.dtype)
        lse[s:s + n] = (lse_b / math.log(2.0)).permute(1, 0, 2).reshape(n, H)


def _paged_lens(kv_indptr, kv_last_page_len, page_size):
    num_pages = (kv_indptr[1:] - kv_indptr[:-1]).long()
    return torch.where(num_pages > 0, (num_pages - 1) * page_size + kv_last_page_len.long(), 0)


@torch.no_grad()
def gqa_paged_decode_ps1(q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale):
    lens = (kv_indptr[1:] - kv_indptr[:-1]).long()
    return _decode((q,), (k_cache,), v_cache, kv_indptr, kv_indices, lens, float(sm_scale))


@torch.no_grad()
def gqa_paged_decode(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    lens = _paged_lens(kv_indptr, kv_last_page_len, k_cache.shape[1])
    return _decode((q,), (k_cache,), v_cache, kv_indptr, kv_indices, lens, float(sm_scale))


@torch.no_grad()
def mla_paged_decode(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale):
    """Absorbed MLA = one shared latent KV head: keys [ckv, kpe], values ckv."""
    ckv, kpe = ckv_cache[:, :, None, :], kpe_cache[:, :, None, :]
    lens = (kv_indptr[1:] - kv_indptr[:-1]).long()
    return _decode((q_nope, q_pe), (ckv, kpe), ckv, kv_indptr, kv_indices, lens, float(sm_scale))


@torch.no_grad()
def gqa_paged_prefill(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    page_size = k_cache.shape[1]
    lens = _paged_lens(kv_indptr, kv_last_page_len, page_size).tolist()
    k_rows = k_cache.reshape(-1, *k_cache.shape[2:])
    v_rows = v_cache.reshape(-1, *v_cache.shape[2:])
    output = torch.empty_like(q)
    lse = torch.empty(q.shape[:2], dtype=torch.float32, device=q.device)
    qo, kv = qo_indptr.tolist(), kv_indptr.tolist()
    for b, n_kv in enumerate(lens):
        pages = kv_indices[kv[b]:kv[b + 1]].long()
        rows = (pages[:, None] * page_size + torch.arange(page_size, device=q.device)).flatten()[:n_kv]
        _causal(q[qo[b]:qo[b + 1]], k_rows[rows], v_rows[rows], float(sm_scale),
                output[qo[b]:qo[b + 1]], lse[qo[b]:qo[b + 1]])
    return output, lse


@torch.no_grad()
def gqa_ragged_prefill(q, k, v, qo_indptr, kv_indptr, sm_scale):
    output = torch.empty_like(q)
    lse = torch.empty(q.shape[:2], dtype=torch.float32, device=q.device)
    qo, kv = qo_indptr.tolist(), kv_indptr.tolist()
    for b in range(len(qo) - 1):
        _causal(q[qo[b]:qo[b + 1]], k[kv[b]:kv[b + 1]], v[kv[b]:kv[b + 1]], float(sm_scale),
                output[qo[b]:qo[b + 1]], lse[qo[b]:qo[b + 1]])
    return output, lse
