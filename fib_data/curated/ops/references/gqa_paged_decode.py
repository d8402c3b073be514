@torch.no_grad()
def run(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """Batch decode, one query token per sequence, over a paged KV cache [pages, page_size, kv_heads, d].

    Sequence b owns pages kv_indices[kv_indptr[b]:kv_indptr[b+1]]; its last page holds
    kv_last_page_len[b] tokens.
    """
    page_size = k_cache.shape[1]
    output = torch.empty_like(q)
    lse = torch.empty(q.shape[:2], dtype=torch.float32, device=q.device)
    for b in range(q.shape[0]):
        start, end = int(kv_indptr[b]), int(kv_indptr[b + 1])
        n_kv = max(end - start - 1, 0) * page_size + (int(kv_last_page_len[b]) if end > start else 0)
        k = _pages(k_cache, kv_indices, start, end, n_kv)
        v = _pages(v_cache, kv_indices, start, end, n_kv)
        out, lse_b = _attend(q[b:b + 1], k, v, float(sm_scale), causal=False)
        output[b], lse[b] = out[0].to(q.dtype), lse_b[0]
    return output, lse
