"""FlashInfer API calls (from level-3 logs or level-10 dumps) -> kernel uses.

A ``Call`` holds one API call's arguments by parameter name: tensors as ``Tensor`` (shape,
dtype, and the values when a dump saved them), other values as Python objects. Positional
arguments are named with the call's recorded signature, or else with the signatures below.

Wrapper ``.run`` calls carry only q and the caches; the batch layout (indptrs, page table) was
given to the same wrapper's ``.plan``. A run is paired with the latest plan of the same wrapper
class (and, in dumps, the same process). Per-sequence lengths come from the plan's index tensors
when their values were saved (dumps); from shapes alone (level 3), page counts are split evenly
over the sequences, every page full, and only the axes fixed by shapes are marked measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ..curated import ops
from .mapping import Use, split_even
from .report import IngestReport

#: Positional parameter names (self excluded) of the APIs that map to curated definitions.
SIGNATURES = {
    "BatchDecodeWithPagedKVCacheWrapper.plan": ["indptr", "indices", "last_page_len", "num_qo_heads",
                                                "num_kv_heads", "head_dim", "page_size"],
    "BatchDecodeWithPagedKVCacheWrapper.run": ["q", "paged_kv_cache"],
    "BatchPrefillWithPagedKVCacheWrapper.plan": ["qo_indptr", "paged_kv_indptr", "paged_kv_indices",
                                                 "paged_kv_last_page_len", "num_qo_heads", "num_kv_heads",
                                                 "head_dim_qk", "page_size", "head_dim_vo", "custom_mask",
                                                 "packed_custom_mask", "causal"],
    "BatchPrefillWithPagedKVCacheWrapper.run": ["q", "paged_kv_cache"],
    "BatchPrefillWithRaggedKVCacheWrapper.plan": ["qo_indptr", "kv_indptr", "num_qo_heads", "num_kv_heads",
                                                  "head_dim_qk", "head_dim_vo", "custom_mask",
                                                  "packed_custom_mask", "causal"],
    "BatchPrefillWithRaggedKVCacheWrapper.run": ["q", "k", "v"],
    "BatchMLAPagedAttentionWrapper.plan": ["qo_indptr", "kv_indptr", "kv_indices", "kv_len_arr", "num_heads",
                                           "head_dim_ckv", "head_dim_kpe", "page_size", "causal", "sm_scale"],
    "BatchMLAPagedAttentionWrapper.run": ["q_nope", "q_pe", "ckv_cache", "kpe_cache"],
    "rmsnorm": ["input", "weight", "eps"],
    "fused_add_rmsnorm": ["input", "residual", "weight", "eps"],
    "silu_and_mul": ["input"],
    "top_k_top_p_sampling_from_probs": ["probs", "top_k", "top_p"],
}
# Aliases between plan parameter names across flashinfer versions.
_PLAN_KEYS = {"indptr": "kv_indptr", "paged_kv_indptr": "kv_indptr", "indices": "kv_indices",
              "paged_kv_indices": "kv_indices", "last_page_len": "kv_last_page_len",
              "paged_kv_last_page_len": "kv_last_page_len"}


@dataclass
class Tensor:
    shape: tuple[int, ...]
    dtype: str = ""
    values: np.ndarray | None = None


@dataclass
class Call:
    name: str
    args: dict = field(default_factory=dict)
    where: str = ""
    when: datetime | None = None
    process: str = ""
    complete: bool = True

    @property
    def wrapper(self) -> str:
        return self.name.rsplit(".", 1)[0] if "." in self.name else ""

    def get(self, *names, default=None):
        for n in names:
            if n in self.args:
                return self.args[n]
        return default


def name_positional(name: str, positional: list, keyword: dict, signature: list[str] | None = None) -> dict:
    """Positional values named by the signature (a leading wrapper ``self`` is dropped)."""
    if positional and isinstance(positional[0], str) and "Wrapper object" in positional[0]:
        positional = positional[1:]
    names = signature or SIGNATURES.get(_short(name), [])
    named = {n: v for n, v in zip(names, positional)}
    named.update({f"arg_{i}": v for i, v in enumerate(positional) if i >= len(names)})
    named.update(keyword)
    return named


def _short(name: str) -> str:
    # Free functions are logged with their bare name; dumps may give a module path.
    return name if "Wrapper" in name else name.rsplit(".", 1)[-1]


def to_uses(calls: list[Call], report: IngestReport, model: str | None, tp: int):
    """Yield (Use, where, when) for each call that maps to a curated definition."""
    plans: dict[tuple[str, str], Call] = {}
    for call in calls:
        short = _short(call.name)
        if short.endswith(".plan"):
            plans[(call.process, call.wrapper)] = call
            continue
        mapper = _MAPPERS.get(short)
        if mapper is None:
            report.drop(f"API without a curated definition ({short})")
            continue
        plan = plans.get((call.process, call.wrapper)) if call.wrapper else None
        if call.wrapper and plan is None:
            if mapper is not _decode:
                report.skip(f"{short} without its .plan", call.where)
                continue
            report.note("flashinfer: decode .run without its .plan: heads and page size read from the "
                        "cache shape (NHD layout assumed), KV lengths synthesized (generator default)")
        try:
            use = mapper(call, plan, model, tp)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            report.skip(f"{short}: arguments do not fit ({type(exc).__name__}: {exc})", call.where)
            continue
        if use is not None:
            yield use, call.where, call.when


def _shape(value) -> tuple[int, ...]:
    if not isinstance(value, Tensor):
        raise TypeError(f"expected a tensor, got {value!r}")
    return value.shape


def _int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def _plan(plan: Call, key: str):
    for alias, target in _PLAN_KEYS.items():
        if target == key and alias in plan.args:
            return plan.args[alias]
    return plan.args[key]


def _paged_layout(plan: Call, page_size: int, batch: int) -> tuple[list[int], dict, bool]:
    """(kv lengths, real index tensors or {}, whether the lengths are measured)."""
    indptr, indices = _plan(plan, "kv_indptr"), _plan(plan, "kv_indices")
    last = plan.get("last_page_len", "paged_kv_last_page_len", "kv_last_page_len")
    if indptr.values is not None and indices.values is not None:
        pages = np.diff(indptr.values.astype(np.int64))
        last_len = last.values.astype(np.int64) if isinstance(last, Tensor) and last.values is not None \
            else np.full(len(pages), page_size)
        kv = (pages - 1) * page_size + last_len
        tensors = {"kv_indptr": indptr.values.astype(np.int32),
                   "kv_indices": indices.values[: int(indptr.values[-1])].astype(np.int32)}
        if page_size > 1:
            tensors["kv_last_page_len"] = last_len.astype(np.int32)
        return [int(k) for k in kv], tensors, True
    pages = split_even(_shape(indices)[0], batch)
    return [p * page_size for p in pages], {}, False


def _decode(call: Call, plan: Call | None, model, tp) -> Use:
    b, h, d = _shape(call.get("q"))
    if plan is None:
        ps, kv_heads = _nhd_cache(call)
        definition = ops.gqa_paged_decode(h, kv_heads, d, ps, model=model, tp=tp)
        pool = _pool(call)
        return Use(definition, (("batch_size", b), ("num_pages", pool)),
                   measured=("batch_size", "len_indptr", "num_pages"))
    kv_heads, ps = _int(_plan(plan, "num_kv_heads")), _int(_plan(plan, "page_size"))
    kv, tensors, exact = _paged_layout(plan, ps, b)
    definition = ops.gqa_paged_decode(h, kv_heads, d, ps, model=model, tp=tp)
    return _paged_use(definition, kv, None, tensors, _pool(call), exact)


def _nhd_cache(call: Call) -> tuple[int, int]:
    """(page size, kv heads) from an NHD cache: (pages, 2, page, heads, dim) or a (k, v) pair."""
    cache = call.get("paged_kv_cache", "kv_cache")
    if isinstance(cache, (list, tuple)):
        _, ps, kv_heads, _ = _shape(cache[0])
    else:
        _, two, ps, kv_heads, _ = _shape(cache)
        if two != 2:
            raise ValueError(f"paged_kv_cache shape {cache.shape} is not (pages, 2, page, heads, dim)")
    return ps, kv_heads


def _pool(call: Call) -> int | None:
    """Pages in the KV pool: the cache's first dimension (NHD tensor or a (k, v) pair)."""
    cache = call.get("paged_kv_cache", "kv_cache")
    if isinstance(cache, (list, tuple)) and cache:
        cache = cache[0]
    return _shape(cache)[0] if isinstance(cache, Tensor) else None


def _prefill(call: Call, plan: Call, model, tp) -> Use | None:
    total_q, h, d = _shape(call.get("q"))
    if not plan.get("causal", default=False):
        raise ValueError("non-causal paged prefill has no curated definition")
    kv_heads, ps = _int(_plan(plan, "num_kv_heads")), _int(_plan(plan, "page_size"))
    qo_indptr = plan.get("qo_indptr")
    batch = _shape(qo_indptr)[0] - 1
    qo = (np.diff(qo_indptr.values).tolist() if qo_indptr.values is not None else split_even(total_q, batch))
    kv, tensors, exact = _paged_layout(plan, ps, batch)
    if qo_indptr.values is not None:
        tensors["qo_indptr"] = qo_indptr.values.astype(np.int32)
    kv = [max(k, q) for k, q in zip(kv, qo)] if not exact else kv
    definition = ops.gqa_paged_prefill(h, kv_heads, d, ps, model=model, tp=tp)
    return _paged_use(definition, kv, [int(q) for q in qo], tensors, _pool(call), exact, extra=("total_q",))


def _ragged(call: Call, plan: Call, model, tp) -> Use:
    total_q, h, d = _shape(call.get("q"))
    total_kv, kv_heads, _ = _shape(call.get("k"))
    if not plan.get("causal", default=False):
        raise ValueError("non-causal ragged prefill has no curated definition")
    batch = _shape(plan.get("qo_indptr"))[0] - 1
    definition = ops.gqa_ragged_prefill(h, kv_heads, d, model=model, tp=tp)
    return Use(definition, (), kv_lens=tuple(split_even(total_kv, batch)), qo_lens=tuple(split_even(total_q, batch)),
               measured=("len_indptr", "total_q", "total_kv"))


def _mla(call: Call, plan: Call, model, tp) -> Use:
    b, h, ckv = _shape(call.get("q_nope"))
    kpe = _shape(call.get("q_pe"))[2]
    if _shape(plan.get("qo_indptr"))[0] - 1 != b:
        raise ValueError("MLA with more than one query token per sequence (prefill) has no curated definition")
    ps = _int(_plan(plan, "page_size"))
    scale = plan.get("sm_scale")
    if not isinstance(scale, float):
        raise ValueError("the plan's sm_scale was not logged")
    pool = _shape(call.get("ckv_cache"))[0]
    kv, tensors, exact = _paged_layout(plan, ps, b)
    return _paged_use(ops.mla_paged_decode(h, ckv, kpe, ps, scale, model=model, tp=tp), kv, None, tensors, pool, exact)


def _paged_use(definition, kv, qo, tensors, pool, exact, extra=()) -> Use:
    axes = (("num_pages", int(pool)),) if pool else ()
    measured = ["batch_size", "len_indptr", "num_kv_indices", *extra] + (["num_pages"] if pool else [])
    if tensors and "kv_indices" in tensors and len(tensors["kv_indices"]):
        # Real page ids index the real pool: it has at least max(id) + 1 pages.
        axes = (("num_pages", max(int(pool or 0), int(tensors["kv_indices"].max()) + 1)),)
    return Use(definition, axes, kv_lens=tuple(kv), qo_lens=tuple(qo) if qo is not None else None,
               measured=tuple(m for m in measured if m in {a["name"] for a in definition["axes"]}),
               tensors=tensors or None)


def _norm(factory):
    def mapper(call: Call, plan, model, tp) -> Use:
        m, hidden = _shape(call.get("input"))
        eps = call.get("eps", default=1e-6)
        return Use(factory(hidden, float(eps), model=model, tp=tp), (("batch_size", m),), measured=("batch_size",))
    return mapper


def _silu(call: Call, plan, model, tp) -> Use:
    m, width = _shape(call.get("input"))
    return Use(ops.silu_and_mul(width // 2, model=model, tp=tp), (("batch_size", m),), measured=("batch_size",))


def _sampling(call: Call, plan, model, tp) -> Use:
    b, vocab = _shape(call.get("probs"))
    return Use(ops.top_k_top_p_sampling(vocab, model=model, tp=tp), (("batch_size", b),), measured=("batch_size",))


_MAPPERS = {
    "BatchDecodeWithPagedKVCacheWrapper.run": _decode,
    "BatchPrefillWithPagedKVCacheWrapper.run": _prefill,
    "BatchPrefillWithRaggedKVCacheWrapper.run": _ragged,
    "BatchMLAPagedAttentionWrapper.run": _mla,
    "rmsnorm": _norm(ops.rmsnorm),
    "fused_add_rmsnorm": _norm(ops.fused_add_rmsnorm),
    "silu_and_mul": _silu,
    "top_k_top_p_sampling_from_probs": _sampling,
}
