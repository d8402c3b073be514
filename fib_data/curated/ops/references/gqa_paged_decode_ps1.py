@torch.no_grad()
def run(q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale):
    """Batch decode over a page-size-1 KV cache [pages, 1, kv_heads, d]: one page per token.

    Sequence b's tokens are pages kv_indices[kv_indptr[b]:kv_indptr[b+1]] (flashinfer-trace
    signature: no last-page lengths, every page is full).
    """
    output = torch.empty_like(q)
    lse = torch.empty(q.shape[:2], dtype=torch.float32, device=q.device)
    for b in range(q.shape[0]):
        start, end = int(kv_indptr[b]), int(kv_indptr[b + 1])
        k = _pages(k_cache, kv_indices, start, end, end - start)
        v = _pages(v_cache, kv_indices, start, end, end - start)
        out, lse_b = _attend(q[b:b + 1], k, v, float(sm_scale), causal=False)
        output[b], lse[b] = out[0].to(q.dtype), lse_b[0]
    return output, lse
