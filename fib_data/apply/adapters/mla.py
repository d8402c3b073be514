"""BatchMLAPagedAttentionWrapper, decode only, in its flat CSR form: plan(qo_indptr, kv_indptr,
kv_indices, kv_len_arr, num_heads, head_dim_ckv, head_dim_kpe, page_size, causal, sm_scale, ...)
then run(q_nope, q_pe, ckv_cache, kpe_cache, ...). The metadata= plan form, the query=/kv_cache=
run form and every scale option keep the original."""

from __future__ import annotations

from .base import Adapter
from .paged import bind, plan_wrapper, serve

_PLAN = ("qo_indptr", "kv_indptr", "kv_indices", "kv_len_arr", "num_heads", "head_dim_ckv",
         "head_dim_kpe", "page_size", "causal", "sm_scale", "q_data_type", "kv_data_type",
         "use_profiler")
_RUN = ("q_nope", "q_pe", "ckv_cache", "kpe_cache", "out", "lse", "return_lse")
#: run() options left at their defaults when the call can be served.
_RUN_DEFAULTS = {"profiler_buffer": None, "kv_len": None, "page_table": None,
                 "return_lse_base_on_e": False, "o_scale": None, "query": None, "kv_cache": None,
                 "ckv_scale": None, "ckv_scale_arr": None, "kpe_scale": None, "sinks": None,
                 "skip_softmax_threshold_scale_factor": None, "bmm1_scale": None, "bmm2_scale": None}
_KNOWN = set(_RUN) | set(_RUN_DEFAULTS)
_PLAN_EXTRAS = ("metadata", "cum_seq_lens_q", "block_tables", "seq_lens", "max_q_len")


def _capture(p: dict, inst):
    ok = (p.get("qo_indptr") is not None and p.get("sm_scale") is not None
          and not p.get("use_profiler") and p.get("lse_mode", "none") == "none"
          and all(p.get(k) is None for k in _PLAN_EXTRAS)
          and p.get("query_layout", "split") == "split"
          and p.get("kv_cache_layout", "split") == "split")
    if not ok:
        return None
    vals = (p["qo_indptr"], p["kv_indptr"], p["kv_indices"], float(p["sm_scale"]))
    return vals, (vals[0].shape, vals[1].shape, vals[2].shape), True


def _make(role, orig, site):
    if role == "plan":
        return plan_wrapper(orig, site, _PLAN, _capture)
    plans, busy = site.plans, site.busy

    def run(self, *args, **kwargs):
        plan = None if busy[0] else plans.get(self)
        if plan is not None and len(args) <= len(_RUN):
            try:
                result = _serve(site, plan, bind(_RUN, args, kwargs))
            except Exception:  # noqa: BLE001 - arguments no definition describes: original decides
                result = None
            if result is not None:
                return result
        return orig(self, *args, **kwargs)

    return run


def _serve(site, plan, r: dict):
    q_nope, q_pe, ckv, kpe = (r.get(n) for n in _RUN[:4])
    plain = set(r) <= _KNOWN and all(r.get(k, d) is d for k, d in _RUN_DEFAULTS.items())
    # Decode: one query per sequence, i.e. batch_size == len(qo_indptr) - 1.
    if not plain or q_nope is None or q_nope.shape[0] != plan.shapes[0][0] - 1:
        return None
    key = (q_nope.shape, q_pe.shape, ckv.shape, kpe.shape, q_nope.dtype, ckv.dtype,
           q_nope.get_device(), plan.shapes)
    return serve(site, key, (q_nope, q_pe, ckv, kpe, *plan.vals[1:]), r.get("out"), r.get("lse"),
                 bool(r.get("return_lse")))


_CLASS = "mla.BatchMLAPagedAttentionWrapper"
MLA_DECODE = Adapter(
    "BatchMLAPagedAttentionWrapper.run", ("mla_paged_decode_",),
    {"plan": (f"{_CLASS}.plan",), "run": (f"{_CLASS}.run",)}, _make,
    slots=("q_nope", "q_pe", "ckv_cache", "kpe_cache", "kv_indptr", "kv_indices", "sm_scale"),
    weights={"num_pages": 0.0, "len_indptr": 0.0})
