"""BatchPrefillWithPagedKVCacheWrapper and BatchPrefillWithRaggedKVCacheWrapper: plan() is
recorded, run() is served from it. Causal plans go to ``*_prefill_causal_*`` definitions, others
to the non-causal ones."""

from __future__ import annotations

from .base import Adapter
from .paged import (PAGED_ALIASES, paged_run, plain_attention, plan_wrapper, run_is_plain, serve,
                    sm_scale)

_PAGED_PLAN = ("qo_indptr", "paged_kv_indptr", "paged_kv_indices", "paged_kv_last_page_len",
               "num_qo_heads", "num_kv_heads", "head_dim_qk", "page_size", "head_dim_vo",
               "custom_mask", "packed_custom_mask", "causal", "pos_encoding_mode",
               "use_fp16_qk_reduction", "sm_scale", "window_left", "logits_soft_cap")
_RAGGED_PLAN = ("qo_indptr", "kv_indptr", "num_qo_heads", "num_kv_heads", "head_dim_qk",
                "head_dim_vo", "custom_mask", "packed_custom_mask", "causal", "pos_encoding_mode",
                "use_fp16_qk_reduction", "window_left", "logits_soft_cap", "sm_scale")


def _servable(p: dict, inst) -> bool:
    vo = p.get("head_dim_vo")
    return plain_attention(p, inst) and (vo is None or vo == p["head_dim_qk"]) \
        and not p.get("use_fp16_qk_reduction")


def _family(kind: str, causal: bool) -> tuple[str, ...]:
    return (f"{kind}_causal_",) if causal else (f"{kind}_h",)


def _capture_paged(p: dict, inst):
    vals = (p["qo_indptr"], p["paged_kv_indptr"], p["paged_kv_indices"],
            p["paged_kv_last_page_len"], sm_scale(p, p["head_dim_qk"]))
    family = _family("gqa_paged_prefill", bool(p.get("causal")))
    return vals, (tuple(t.shape for t in vals[:4]), family), _servable(p, inst)


def _capture_ragged(p: dict, inst):
    vals = (p["qo_indptr"], p["kv_indptr"], sm_scale(p, p["head_dim_qk"]))
    family = _family("gqa_ragged_prefill", bool(p.get("causal")))
    return vals, (vals[0].shape, vals[1].shape, family), _servable(p, inst)


def _paged(role, orig, site):
    return plan_wrapper(orig, site, _PAGED_PLAN, _capture_paged) if role == "plan" \
        else paged_run(orig, site, role)


def _ragged(role, orig, site):
    if role == "plan":
        return plan_wrapper(orig, site, _RAGGED_PLAN, _capture_ragged)
    plans, busy = site.plans, site.busy

    def run(self, q, k, v, *args, out=None, lse=None, return_lse=False, enable_pdl=None, **extra):
        plan = None if busy[0] else plans.get(self)
        if plan is not None and (not (args or extra) or run_is_plain(args, extra)):
            try:
                kn, vn = (k.transpose(0, 1), v.transpose(0, 1)) if plan.layout == "HND" else (k, v)
                key = (q.shape, kn.shape, q.dtype, k.dtype, q.get_device(), plan.shapes)
                result = serve(site, key, (q, kn, vn, *plan.vals), out, lse, return_lse,
                               prefixes=plan.shapes[-1])
            except Exception:  # noqa: BLE001 - arguments no definition describes: original decides
                result = None
            if result is not None:
                return result
        return orig(self, q, k, v, *args, out=out, lse=lse, return_lse=return_lse,
                    enable_pdl=enable_pdl, **extra)

    return run


_PAGED = "prefill.BatchPrefillWithPagedKVCacheWrapper"
_RAGGED = "prefill.BatchPrefillWithRaggedKVCacheWrapper"
PAGED_PREFILL = Adapter(
    "BatchPrefillWithPagedKVCacheWrapper.run", ("gqa_paged_prefill_",),
    {"plan": (f"{_PAGED}.plan", f"{_PAGED}.begin_forward"), "run": (f"{_PAGED}.run",),
     "run_return_lse": (f"{_PAGED}.run_return_lse",)}, _paged,
    slots=("q", "k_cache", "v_cache", "qo_indptr", "kv_indptr", "kv_indices", "kv_last_page_len",
           "sm_scale"),
    aliases=PAGED_ALIASES, weights={"num_pages": 0.0, "len_indptr": 0.0})
RAGGED_PREFILL = Adapter(
    "BatchPrefillWithRaggedKVCacheWrapper.run", ("gqa_ragged_prefill_",),
    {"plan": (f"{_RAGGED}.plan", f"{_RAGGED}.begin_forward"), "run": (f"{_RAGGED}.run",)}, _ragged,
    slots=("q", "k", "v", "qo_indptr", "kv_indptr", "sm_scale"))
