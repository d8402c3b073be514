@torch.no_grad()
def run(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len, sm_scale):
    """Causal batch prefill of ragged queries against a paged KV cache that already holds them.

    Sequence b's queries are q[qo_indptr[b]:qo_indptr[b+1]], its keys the tokens of pages
    kv_indices[kv_indptr[b]:kv_indptr[b+1]] (last page holding kv_last_page_len[b]); the
    queries are the last tokens of the sequence (causal mask aligned bottom-right).
    """
    page_size = k_cache.shape[1]
    output = torch.empty_like(q)
    lse = torch.empty(q.shape[:2], dtype=torch.float32, device=q.device)
    for b in range(qo_indptr.shape[0] - 1):
        q0, q1 = int(qo_indptr[b]), int(qo_indptr[b + 1])
        start, end = int(kv_indptr[b]), int(kv_indptr[b + 1])
        n_kv = max(end - start - 1, 0) * page_size + (int(kv_last_page_len[b]) if end > start else 0)
        k = _pages(k_cache, kv_indices, start, end, n_kv)
        v = _pages(v_cache, kv_indices, start, end, n_kv)
        out, lse_b = _attend(q[q0:q1], k, v, float(sm_scale), causal=True)
        output[q0:q1], lse[q0:q1] = out.to(q.dtype), lse_b
    return output, lse
