@torch.no_grad()
def run(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale):
    """DeepSeek MLA decode in the absorbed form flashinfer's BatchMLAPagedAttentionWrapper computes.

    Every head attends over the shared latent cache: logits = (q_nope . ckv + q_pe . kpe) * sm_scale,
    output = softmax(logits) @ ckv. Page size 1: sequence b's tokens are pages
    kv_indices[kv_indptr[b]:kv_indptr[b+1]].
    """
    batch, heads, _ = q_nope.shape
    output = torch.empty_like(q_nope)
    lse = torch.empty(batch, heads, dtype=torch.float32, device=q_nope.device)
    for b in range(batch):
        start, end = int(kv_indptr[b]), int(kv_indptr[b + 1])
        ckv = _pages(ckv_cache, kv_indices, start, end, end - start).float()
        kpe = _pages(kpe_cache, kv_indices, start, end, end - start).float()
        # One latent "kv head" shared by all query heads: concatenate the two key parts.
        q = torch.cat([q_nope[b:b + 1], q_pe[b:b + 1]], dim=-1)
        k = torch.cat([ckv, kpe], dim=-1)[:, None, :]
        out, lse_b = _attend(q, k, ckv[:, None, :], float(sm_scale), causal=False)
        output[b], lse[b] = out[0].to(q_nope.dtype), lse_b[0]
    return output, lse
