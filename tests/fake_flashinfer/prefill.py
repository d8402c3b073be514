import math

import torch

from . import CALLS
from .attention import attend, gather, unpack


class BatchPrefillWithPagedKVCacheWrapper:
    def __init__(self, float_workspace_buffer, kv_layout="NHD", use_cuda_graph=False, **kwargs):
        self._kv_layout = kv_layout
        self._use_cuda_graph = use_cuda_graph

    def plan(self, qo_indptr, paged_kv_indptr, paged_kv_indices, paged_kv_last_page_len,
             num_qo_heads, num_kv_heads, head_dim_qk, page_size, head_dim_vo=None,
             custom_mask=None, packed_custom_mask=None, causal=False, pos_encoding_mode="NONE",
             use_fp16_qk_reduction=False, sm_scale=None, window_left=-1, logits_soft_cap=None,
             rope_scale=None, rope_theta=None, q_data_type="float16", kv_data_type=None, **kwargs):
        CALLS["prefill.plan"] += 1
        self._plan = (qo_indptr, paged_kv_indptr, paged_kv_indices, paged_kv_last_page_len,
                      causal, sm_scale or 1 / math.sqrt(head_dim_qk))

    def run(self, q, paged_kv_cache, *args, q_scale=None, k_scale=None, v_scale=None, out=None,
            lse=None, return_lse=False, lse_base="log2", lse_layout="NH", enable_pdl=None,
            window_left=None, sinks=None, kv_cache_sf=None,
            skip_softmax_threshold_scale_factor=None, use_fp16_softmax=None, uses_spcompress=None):
        CALLS["prefill.run"] += 1
        qo_indptr, indptr, indices, last, causal, sm_scale = self._plan
        k_cache, v_cache = unpack(paged_kv_cache, self._kv_layout)
        o = torch.empty_like(q)
        s = torch.empty(q.shape[:2], dtype=torch.float32)
        for b in range(len(qo_indptr) - 1):
            qs, qe = int(qo_indptr[b]), int(qo_indptr[b + 1])
            start, end = int(indptr[b]), int(indptr[b + 1])
            k = gather(k_cache, indices, start, end, int(last[b]))
            v = gather(v_cache, indices, start, end, int(last[b]))
            o[qs:qe], s[qs:qe] = attend(q[qs:qe], k, v, sm_scale, causal)
        if out is not None:
            out.copy_(o)
            o = out
        return (o, s) if return_lse else o


class BatchPrefillWithRaggedKVCacheWrapper:
    def __init__(self, float_workspace_buffer, kv_layout="NHD", use_cuda_graph=False, **kwargs):
        self._kv_layout = kv_layout
        self._use_cuda_graph = use_cuda_graph

    def plan(self, qo_indptr, kv_indptr, num_qo_heads, num_kv_heads, head_dim_qk,
             head_dim_vo=None, custom_mask=None, packed_custom_mask=None, causal=False,
             pos_encoding_mode="NONE", use_fp16_qk_reduction=False, window_left=-1,
             logits_soft_cap=None, sm_scale=None, **kwargs):
        CALLS["ragged.plan"] += 1
        self._plan = (qo_indptr, kv_indptr, causal, sm_scale or 1 / math.sqrt(head_dim_qk))

    def run(self, q, k, v, *args, q_scale=None, k_scale=None, v_scale=None, o_scale=None,
            out=None, lse=None, return_lse=False, lse_base="log2", lse_layout="NH",
            enable_pdl=None, kv_cache_sf=None):
        CALLS["ragged.run"] += 1
        qo_indptr, kv_indptr, causal, sm_scale = self._plan
        o = torch.empty_like(q)
        s = torch.empty(q.shape[:2], dtype=torch.float32)
        for b in range(len(qo_indptr) - 1):
            qs, qe = int(qo_indptr[b]), int(qo_indptr[b + 1])
            ks, ke = int(kv_indptr[b]), int(kv_indptr[b + 1])
            o[qs:qe], s[qs:qe] = attend(q[qs:qe], k[ks:ke], v[ks:ke], sm_scale, causal)
        return (o, s) if return_lse else o
