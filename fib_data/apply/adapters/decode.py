"""BatchDecodeWithPagedKVCacheWrapper: plan() is recorded (indptr, indices, last page lengths,
scale) and run() is served from those plus q and the paged KV cache."""

from __future__ import annotations

from .base import Adapter
from .paged import PAGED_ALIASES, paged_run, plain_attention, plan_wrapper, sm_scale

#: plan()'s parameters in order, the deprecated positional ones of flashinfer 0.7 included.
_PLAN = ("indptr", "indices", "last_page_len", "num_qo_heads", "num_kv_heads", "head_dim",
         "page_size", "pos_encoding_mode", "window_left", "logits_soft_cap", "q_data_type",
         "kv_data_type", "o_data_type", "data_type", "sm_scale", "rope_scale", "rope_theta",
         "non_blocking", "block_tables", "seq_lens", "fixed_split_size", "disable_split_kv",
         "q_len_per_req")


def _capture(p: dict, inst):
    vals = (p["indptr"], p["indices"], p["last_page_len"], sm_scale(p, p["head_dim"]))
    return vals, (vals[0].shape, vals[1].shape, None), plain_attention(p, inst)


def _make(role, orig, site):
    return plan_wrapper(orig, site, _PLAN, _capture) if role == "plan" else paged_run(orig, site, role)


_CLASS = "decode.BatchDecodeWithPagedKVCacheWrapper"
DECODE = Adapter(
    "BatchDecodeWithPagedKVCacheWrapper.run", ("gqa_paged_decode_",),
    {"plan": (f"{_CLASS}.plan", f"{_CLASS}.begin_forward"), "run": (f"{_CLASS}.run",),
     "run_return_lse": (f"{_CLASS}.run_return_lse",)}, _make,
    slots=("q", "k_cache", "v_cache", "kv_indptr", "kv_indices", "kv_last_page_len", "sm_scale"),
    aliases=PAGED_ALIASES, weights={"num_pages": 0.0, "len_indptr": 0.0})
