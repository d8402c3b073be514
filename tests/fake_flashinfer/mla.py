import torch

from . import CALLS
from .attention import attend


class BatchMLAPagedAttentionWrapper:
    def __init__(self, float_workspace_buffer, use_cuda_graph=False, **kwargs):
        self._use_cuda_graph = use_cuda_graph

    def plan(self, qo_indptr=None, kv_indptr=None, kv_indices=None, kv_len_arr=None,
             num_heads=None, head_dim_ckv=None, head_dim_kpe=None, page_size=None, causal=None,
             sm_scale=None, q_data_type=None, kv_data_type=None, use_profiler=False, **kwargs):
        CALLS["mla.plan"] += 1
        self._plan = (kv_indptr, kv_indices, sm_scale)

    def run(self, q_nope=None, q_pe=None, ckv_cache=None, kpe_cache=None, out=None, lse=None,
            return_lse=False, profiler_buffer=None, kv_len=None, page_table=None,
            return_lse_base_on_e=False, o_scale=None, **kwargs):
        CALLS["mla.run"] += 1
        indptr, indices, sm_scale = self._plan
        o = torch.empty_like(q_nope)
        s = torch.empty(q_nope.shape[:2], dtype=torch.float32)
        for b in range(q_nope.shape[0]):
            pages = indices[int(indptr[b]):int(indptr[b + 1])].long()
            ckv, kpe = ckv_cache[pages].flatten(0, 1), kpe_cache[pages].flatten(0, 1)
            q = torch.cat([q_nope[b:b + 1], q_pe[b:b + 1]], -1)
            k = torch.cat([ckv, kpe], -1)[:, None]
            ob, sb = attend(q, k, ckv[:, None], sm_scale, causal=False)
            o[b], s[b] = ob[0], sb[0]
        if out is not None:
            out.copy_(o)
            o = out
        return (o, s) if return_lse else o
