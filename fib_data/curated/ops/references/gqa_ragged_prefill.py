@torch.no_grad()
def run(q, k, v, qo_indptr, kv_indptr, sm_scale):
    """Causal batch prefill on ragged (unpaged) tensors.

    Sequence b's queries are q[qo_indptr[b]:qo_indptr[b+1]] and its keys/values
    k[kv_indptr[b]:kv_indptr[b+1]]; causal mask aligned bottom-right.
    """
    output = torch.empty_like(q)
    lse = torch.empty(q.shape[:2], dtype=torch.float32, device=q.device)
    for b in range(qo_indptr.shape[0] - 1):
        q0, q1 = int(qo_indptr[b]), int(qo_indptr[b + 1])
        k0, k1 = int(kv_indptr[b]), int(kv_indptr[b + 1])
        out, lse_b = _attend(q[q0:q1], k[k0:k1], v[k0:k1], float(sm_scale), causal=True)
        output[q0:q1], lse[q0:q1] = out.to(q.dtype), lse_b
    return output, lse
