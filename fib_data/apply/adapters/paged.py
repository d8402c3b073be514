"""What the paged-attention wrappers share: plan() capture and paged KV cache unpacking."""

from __future__ import annotations

import functools
import math
import weakref
from typing import Any, Callable

#: run() keywords the definitions cannot express; any of them set means: call the original.
UNSUPPORTED_RUN = ("q_scale", "k_scale", "v_scale", "sinks", "kv_cache_sf", "q_len_per_req",
                   "skip_softmax_threshold_scale_factor", "use_fp16_softmax", "uses_spcompress")


#: flashinfer's argument names and older definition spellings -> the definitions' input names.
PAGED_ALIASES = {"paged_kv_indptr": "kv_indptr", "indptr": "kv_indptr",
                 "paged_kv_indices": "kv_indices", "indices": "kv_indices",
                 "last_page_len": "kv_last_page_len", "paged_kv_last_page_len": "kv_last_page_len"}


class Plan:
    __slots__ = ("vals", "shapes", "layout")

    def __init__(self, vals: tuple, shapes: tuple, layout: str):
        self.vals, self.shapes, self.layout = vals, shapes, layout


class Plans:
    """What each wrapper instance was planned with (None: a plan the definitions cannot serve),
    keyed weakly by the instance so that nothing is left on flashinfer's objects after undo."""

    def __init__(self) -> None:
        self._by_instance: "weakref.WeakKeyDictionary[Any, Plan | None]" = weakref.WeakKeyDictionary()

    def set(self, inst: Any, vals: tuple, shapes: tuple, ok: bool) -> None:
        try:
            self._by_instance[inst] = Plan(vals, shapes, getattr(inst, "_kv_layout", "NHD")) if ok else None
        except TypeError:  # an instance that cannot be weakly referenced is simply not served
            pass

    def get(self, inst: Any) -> Plan | None:
        try:
            return self._by_instance.get(inst)
        except TypeError:
            return None

    def drop(self, inst: Any) -> None:
        """Before the original plan() runs: if it raises, no older plan may serve later runs."""
        try:
            self._by_instance.pop(inst, None)
        except TypeError:
            pass


def plain_attention(kwargs: dict, inst: Any) -> bool:
    """True when plan() asked for what the definitions compute: no rope, no window, no soft cap,
    no CUDA graph (a substitute would allocate during capture), no custom mask."""
    return (kwargs.get("pos_encoding_mode", "NONE") == "NONE"
            and kwargs.get("window_left", -1) in (-1, None)
            and not kwargs.get("logits_soft_cap")
            and kwargs.get("custom_mask") is None and kwargs.get("packed_custom_mask") is None
            and kwargs.get("q_len_per_req", 1) in (1, None)
            and not getattr(inst, "_use_cuda_graph", False))


def sm_scale(kwargs: dict, head_dim: int) -> float:
    value = kwargs.get("sm_scale")
    return 1.0 / math.sqrt(head_dim) if value is None else float(value)


def split_kv(paged_kv_cache: Any, layout: str):
    """(k, v) in NHD order [pages, page_size, heads, dim] from a (k, v) pair or a 5-D tensor."""
    if type(paged_kv_cache) is tuple or isinstance(paged_kv_cache, list):
        k, v = paged_kv_cache
    else:
        k, v = paged_kv_cache[:, 0], paged_kv_cache[:, 1]
    if layout == "HND":
        k, v = k.transpose(1, 2), v.transpose(1, 2)
    return k, v


def run_is_plain(args: tuple, extra: dict) -> bool:
    return not args and all(extra.get(k) is None for k in UNSUPPORTED_RUN) \
        and extra.get("window_left") in (None, -1) and extra.get("lse_base", "log2") == "log2" \
        and extra.get("lse_layout", "NH") == "NH"


def finish(outs: list, names: tuple[str, ...], out, lse, return_lse: bool):
    """Write results into the caller's buffers and shape the return value like the original."""
    o = outs[names.index("output")] if "output" in names else outs[0]
    if out is not None:
        out.copy_(o)
        o = out
    if not return_lse:
        return o
    value = outs[names.index("lse")]
    if lse is not None:
        lse.copy_(value)
        value = lse
    return o, value


def bind(names: tuple[str, ...], args: tuple, kwargs: dict) -> dict:
    """Arguments by name: positional ones zipped with flashinfer's parameter order."""
    bound = dict(zip(names, args))
    bound.update(kwargs)
    return bound


def plan_wrapper(orig, site, names: tuple[str, ...],
                 capture: Callable[[dict, Any], tuple[tuple, tuple, bool] | None]):
    """A plan() that runs the original, then records ``capture(bound_args, instance)``:
    (definition inputs the plan fixes, their shapes for the route key, servable?)."""
    plans, busy = site.plans, site.busy

    def plan(self, *args, **kwargs):
        plans.drop(self)
        result = orig(self, *args, **kwargs)
        if not busy[0] and len(args) <= len(names):
            captured = capture(bind(names, args, kwargs), self)
            if captured is not None:
                plans.set(self, *captured)
        return result

    return plan


def serve(site, key, vals: tuple, out, lse, return_lse: bool, prefixes=None):
    """The run() result from the dataset's solution, or None when the original must run."""
    route = site.memo.get(key) or site.miss(key, vals, prefixes=prefixes)
    names = route.choice.output_names
    if "lse" not in names and (return_lse or lse is not None):
        return None
    outs = site.call(route, vals)
    return None if outs is None else finish(outs, names, out, lse, return_lse)


def paged_run(orig, site, role: str = "run"):
    """run(q, paged_kv_cache, ...) of the paged-KV wrappers (decode and prefill), served from
    the recorded plan; the plan's last shape entry names the definition family (None: the
    adapter's own). Role ``run_return_lse`` gives flashinfer's partialmethod of it."""
    plans, busy = site.plans, site.busy
    if role == "run_return_lse":
        return functools.partialmethod(paged_run(orig, site), return_lse=True)

    def run(self, q, paged_kv_cache, *args, out=None, lse=None, return_lse=False,
            enable_pdl=None, **extra):
        plan = None if busy[0] else plans.get(self)
        if plan is not None and (not (args or extra) or run_is_plain(args, extra)):
            try:
                k, v = split_kv(paged_kv_cache, plan.layout)
                key = (q.shape, k.shape, q.dtype, k.dtype, q.get_device(), plan.shapes)
                result = serve(site, key, (q, k, v, *plan.vals), out, lse, return_lse,
                               prefixes=plan.shapes[-1])
            except Exception:  # noqa: BLE001 - arguments no definition describes: original decides
                result = None
            if result is not None:
                return result
        return orig(self, q, paged_kv_cache, *args, out=out, lse=lse, return_lse=return_lse,
                    enable_pdl=enable_pdl, **extra)

    return run
