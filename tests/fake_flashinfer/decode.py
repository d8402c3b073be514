import functools
import math

import torch

from . import CALLS
from .attention import attend, gather, unpack


class BatchDecodeWithPagedKVCacheWrapper:
    def __init__(self, float_workspace_buffer, kv_layout="NHD", use_cuda_graph=False,
                 use_tensor_cores=False, paged_kv_indptr_buffer=None, paged_kv_indices_buffer=None,
                 paged_kv_last_page_len_buffer=None, backend="auto", jit_args=None):
        self._kv_layout = kv_layout
        self._use_cuda_graph = use_cuda_graph

    def plan(self, indptr, indices, last_page_len, num_qo_heads, num_kv_heads, head_dim,
             page_size, *deprecated_positional_args, **kwargs):
        CALLS["decode.plan"] += 1
        self._plan = (indptr, indices, last_page_len, kwargs.get("sm_scale") or 1 / math.sqrt(head_dim))

    begin_forward = plan

    def run(self, q, paged_kv_cache, *args, q_scale=None, k_scale=None, v_scale=None, out=None,
            lse=None, return_lse=False, enable_pdl=None, window_left=None, sinks=None,
            q_len_per_req=None, skip_softmax_threshold_scale_factor=None, kv_cache_sf=None):
        CALLS["decode.run"] += 1
        indptr, indices, last, sm_scale = self._plan
        k_cache, v_cache = unpack(paged_kv_cache, self._kv_layout)
        o = torch.empty_like(q)
        s = torch.empty(q.shape[:2], dtype=torch.float32)
        for b in range(q.shape[0]):
            start, end = int(indptr[b]), int(indptr[b + 1])
            k = gather(k_cache, indices, start, end, int(last[b]))
            v = gather(v_cache, indices, start, end, int(last[b]))
            ob, sb = attend(q[b:b + 1], k, v, sm_scale, causal=False)
            o[b], s[b] = ob[0], sb[0]
        if out is not None:
            out.copy_(o)
            o = out
        if lse is not None:
            lse.copy_(s)
            s = lse
        return (o, s) if return_lse else o

    run_return_lse = functools.partialmethod(run, return_lse=True)
