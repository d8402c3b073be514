"""flashinfer attention wrappers: paged decode, paged/ragged causal prefill, MLA paged decode.

flashinfer splits attention into ``plan`` (host-side scheduling from the index arrays, with a
device sync) and ``run``. Serving engines plan once per batch and run every layer with it; here a
plan is kept per (operation, device, shape config) and redone only when the index tensors
handed in change: a plan holds references to the exact tensors it was made from and their
version counters, so a different or modified tensor triggers a re-plan, and holding the
reference means its storage can never be reused by a new tensor that merely looks the same.
One 128 MiB float workspace is allocated per device and shared by every wrapper (they run one
after another on the current stream). Outputs are written into the caller's buffers (DPS).
"""

import torch

import flashinfer

WORKSPACE_BYTES = 128 * 1024 * 1024

_WORKSPACES = {}
_PLANS = {}


def _workspace(device):
    if device not in _WORKSPACES:
        _WORKSPACES[device] = torch.zeros(WORKSPACE_BYTES, dtype=torch.uint8, device=device)
    return _WORKSPACES[device]


def _wrapper(key, make, index_tensors, plan):
    """The wrapper for ``key``, planned for exactly these index tensors."""
    entry = _PLANS.get(key)
    if entry is None:
        entry = _PLANS[key] = {"wrapper": make(_workspace(index_tensors[0].device)), "planned": None}
    stamp = [(t, t._version) for t in index_tensors]
    planned = entry["planned"]
    if planned is None or len(planned) != len(stamp) or any(
            a is not b or va != vb for (a, va), (b, vb) in zip(planned, stamp)):
        plan(entry["wrapper"])
        entry["planned"] = stamp
    return entry["wrapper"]


def _decode(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
    _, heads, head_dim = q.shape
    page_size, kv_heads = k_cache.shape[1], k_cache.shape[2]
    sm_scale = float(sm_scale)
    key = ("decode", q.device, heads, kv_heads, head_dim, page_size, q.dtype, k_cache.dtype, sm_scale)
    index = tuple(t for t in (kv_indptr, kv_indices, kv_last_page_len) if t is not None)

    def plan(w):
        last = kv_last_page_len
        if last is None:  # page size 1: every page holds one token
            last = torch.ones(kv_indptr.numel() - 1, dtype=torch.int32, device=q.device)
        w.plan(indptr=kv_indptr, indices=kv_indices, last_page_len=last,
               num_qo_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim, page_size=page_size,
               pos_encoding_mode="NONE", q_data_type=q.dtype, kv_data_type=k_cache.dtype,
               sm_scale=sm_scale)

    wrapper = _wrapper(key, lambda ws: flashinfer.BatchDecodeWithPagedKVCacheWrapper(ws, kv_layout="NHD"),
                       index, plan)
    wrapper.run(q, (k_cache, v_cache), out=output, lse=lse, return_lse=True)


@torch.no_grad()
def gqa_paged_decode_ps1(q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale, output, lse):
    _decode(q, k_cache, v_cache, kv_indptr, kv_indices, None, sm_scale, output, lse)


@torch.no_grad()
def gqa_paged_decode(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale,
                     output, lse):
    _decode(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse)


@torch.no_grad()
def gqa_paged_prefill(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, kv_last_page_len,
                      sm_scale, output, lse):
    _, heads, head_dim = q.shape
    page_size, kv_heads = k_cache.shape[1], k_cache.shape[2]
    sm_scale = float(sm_scale)
    key = ("paged_prefill", q.device, heads, kv_heads, head_dim, page_size, q.dtype, sm_scale)

    def plan(w):
        w.plan(qo_indptr=qo_indptr, paged_kv_indptr=kv_indptr, paged_kv_indices=kv_indices,
               paged_kv_last_page_len=kv_last_page_len, num_qo_heads=heads, num_kv_heads=kv_heads,
               head_dim_qk=head_dim, page_size=page_size, causal=True, sm_scale=sm_scale, q_data_type=q.dtype,
               kv_data_type=k_cache.dtype)

    wrapper = _wrapper(key, lambda ws: flashinfer.BatchPrefillWithPagedKVCacheWrapper(ws, kv_layout="NHD"),
                       (qo_indptr, kv_indptr, kv_indices, kv_last_page_len), plan)
    wrapper.run(q, (k_cache, v_cache), out=output, lse=lse, return_lse=True)


@torch.no_grad()
def gqa_ragged_prefill(q, k, v, qo_indptr, kv_indptr, sm_scale, output, lse):
    _, heads, head_dim = q.shape
    kv_heads = k.shape[1]
    sm_scale = float(sm_scale)
    key = ("ragged_prefill", q.device, heads, kv_heads, head_dim, q.dtype, sm_scale)

    def plan(w):
        w.plan(qo_indptr=qo_indptr, kv_indptr=kv_indptr, num_qo_heads=heads,
               num_kv_heads=kv_heads, head_dim_qk=head_dim, causal=True, sm_scale=sm_scale,
               q_data_type=q.dtype, kv_data_type=k.dtype)

    wrapper = _wrapper(key, lambda ws: flashinfer.BatchPrefillWithRaggedKVCacheWrapper(ws, kv_layout="NHD"),
                       (qo_indptr, kv_indptr), plan)
    wrapper.run(q, k, v, out=output, lse=lse, return_lse=True)


@torch.no_grad()
def mla_paged_decode(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale,
                     output, lse):
    batch, heads, head_dim_ckv = q_nope.shape
    head_dim_kpe = q_pe.shape[-1]
    page_size = ckv_cache.shape[1]
    sm_scale = float(sm_scale)
    key = ("mla_decode", q_nope.device, heads, head_dim_ckv, head_dim_kpe, page_size, q_nope.dtype, sm_scale)
    mla = flashinfer.mla
    new_api = hasattr(mla, "MLAPlanMetadata")

    def plan(w):
        qo_indptr = torch.arange(batch + 1, dtype=torch.int32, device=q_nope.device)
        kv_lens = (kv_indptr[1:] - kv_indptr[:-1]).to(torch.int32)  # page size 1: pages = tokens
        common = dict(num_heads=heads, head_dim_ckv=head_dim_ckv, head_dim_kpe=head_dim_kpe,
                      page_size=page_size, causal=False, sm_scale=sm_scale,
                      q_data_type=q_nope.dtype, kv_data_type=ckv_cache.dtype)
        if new_api:  # flashinfer >= 0.7: canonical metadata, LSE mode fixed at plan time
            w.plan(metadata=mla.MLAPlanMetadata.csr(qo_indptr, kv_indptr, kv_indices, kv_lens),
                   query_layout="split", kv_cache_layout="split", lse_mode="base2", **common)
        else:
            w.plan(qo_indptr=qo_indptr, kv_indptr=kv_indptr, kv_indices=kv_indices,
                   kv_len_arr=kv_lens, **common)

    wrapper = _wrapper(key, lambda ws: mla.BatchMLAPagedAttentionWrapper(ws),
                       (kv_indptr, kv_indices), plan)
    if new_api:
        wrapper.run(query=(q_nope, q_pe), kv_cache=(ckv_cache, kpe_cache), out=output, lse=lse,
                    return_lse=True)
    else:
        wrapper.run(q_nope, q_pe, ckv_cache, kpe_cache, out=output, lse=lse, return_lse=True)
