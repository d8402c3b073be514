"""Compare solution outputs with reference outputs; check inputs were left alone.

The worker computes statistics per output (``output_stats``); the parent turns them into a status
(``trial_status``), so a status is never a string the untrusted process chose.
Order of checks, as upstream: exception, shape, dtype, non-finite values where the reference has
none, then per-dtype tolerances (allclose: |out - ref| <= atol + rtol * |ref|). Samplers' outputs
carry ``sampling`` statistics instead of elementwise errors (see ``sampling.py``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from . import sampling

#: Used when a definition gives no tolerance for an output dtype (KernelBench/torchbench values;
#: fp8 allows one e4m3 rounding step, 2^-3 relative).
DEFAULT_TOLERANCES = {
    "float64": (1e-7, 1e-7), "float32": (1e-4, 1e-4), "float16": (1e-2, 1e-2),
    "bfloat16": (1e-2, 1e-2), "float8_e4m3fn": (1.25e-1, 1.25e-1), "float8_e5m2": (2.5e-1, 2.5e-1),
    "float4_e2m1": (5e-1, 5e-1),
}

# Protocol violations: each fails the evaluation (RUNTIME_ERROR) whatever the numbers say.
VIOLATIONS = ("output_not_plain_tensor", "output_aliases_input", "input_mutated", "calls_reference",
              "output_reused", "tampered")

_BITS = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}


def tolerance_for(definition: Mapping, dtype: str) -> tuple[float, float]:
    for tol in definition.get("tolerances") or []:
        if tol["dtype"] == dtype:
            return float(tol["atol"]), float(tol["rtol"])
    return DEFAULT_TOLERANCES.get(dtype, (0.0, 0.0))


def dtype_name(t) -> str:
    return str(t.dtype).removeprefix("torch.").replace("float4_e2m1fn_x2", "float4_e2m1")


def bits(t):
    """The tensor's raw bits as integers, so NaN == NaN and -0 != +0."""
    import torch

    if t.dtype == torch.bool:
        return t.view(torch.uint8)
    return t.contiguous().view(getattr(torch, _BITS[t.element_size()]))


def fingerprint(values: Sequence[Any]):
    """Cheap checksum of an input set, kept on the device (None without tensors): per tensor, the
    wrapping int64 sums of its raw bytes read as 64-bit words (narrower words when its size is no
    multiple of 8), over its even words and over its odd words. A change to any one word changes
    one of them; moving data between even and odd words (a transpose, a sort, a shifted write)
    changes both. One native reduction per tensor that reads the data once and allocates nothing
    of its size: this runs over every timing input set twice. Sets are compared with
    ``changed_sets``, many at once, with one copy to the host. (Trial inputs are compared bit for
    bit instead: ``mutated_many``.)"""
    return fingerprint_many([values])[0]


def fingerprint_many(sets: Sequence[Sequence[Any]], budget_bytes: int = 1 << 28, stack_below: int = 1 << 21) -> list:
    """``fingerprint`` of sets with the same layout (a pool's input sets): tensors of one position
    stacked and summed in one reduction for all sets, the largest ones summed in place (below
    ``stack_below`` elements the copy costs the GPU less than a launch per set costs the host)."""
    import torch

    columns = []
    for pos, first in enumerate(sets[0] if sets else []):
        if not isinstance(first, torch.Tensor):
            continue
        tensors = [values[pos] for values in sets]
        if (len(tensors) == 1 or first.numel() >= stack_below
                or any(t.shape != first.shape or t.dtype != first.dtype for t in tensors)):
            # in place: one reduction per tensor, no copy (stacking one set would copy it)
            columns.append(torch.stack([_word_sums(words(t)[None])[0] for t in tensors]))
            continue
        parts = [_word_sums(torch.stack([words(t) for t in chunk]))
                 for chunk in _batches(tensors, first.numel(), budget_bytes)]
        columns.append(torch.cat(parts))
    if not columns:
        return [None] * len(sets)
    return list(torch.stack(columns, 1).unbind(0))


def words(t):
    """``t``'s raw bytes as the widest integer words that divide its size (int64 for most)."""
    import torch

    b = bits(t).reshape(-1)
    for dtype in (torch.int64, torch.int32, torch.int16):
        if dtype.itemsize > b.element_size() and (b.numel() * b.element_size()) % dtype.itemsize == 0:
            try:
                return b.view(dtype)
            except RuntimeError:  # a view whose offset is not aligned to the wider word
                pass
    return b


def _batches(items: Sequence, numel: int, budget_bytes: int) -> list:
    """``items`` in runs small enough that stacking them (8 bytes per element, the widest
    temporary) stays within ``budget_bytes``."""
    per = max(1, budget_bytes // max(8 * numel, 1))
    return [items[k:k + per] for k in range(0, len(items), per)]


def _word_sums(rows):
    """[k, n] integer words -> [k, 2] int64: each row's sums over its even and its odd words
    (wrapping); one reduction when n is even (reductions cost more to launch than to run here)."""
    import torch

    if rows.shape[1] % 2 == 0:
        return rows.view(rows.shape[0], -1, 2).sum(1, dtype=torch.int64)
    return torch.stack([rows[:, 0::2].sum(1, dtype=torch.int64), rows[:, 1::2].sum(1, dtype=torch.int64)], 1)


def changed_sets(pairs: Sequence[tuple[Any, Any]]) -> list[bool]:
    """For (fingerprint then, fingerprint now) pairs: whether each set changed (one host copy)."""
    import torch

    flags = [(a != b).any() for a, b in pairs if a is not None]
    found = iter(torch.stack(flags).tolist() if flags else [])
    return [bool(next(found)) if a is not None else False for a, _ in pairs]


def clone_inputs(values: Sequence[Any]) -> list:
    import torch

    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def mutated(values: Sequence[Any], pristine: Sequence[Any], names: Sequence[str]) -> list[str]:
    return mutated_many([(values, pristine)], names)[0]


def mutated_many(cases: Sequence[tuple[Sequence[Any], Sequence[Any]]], names: Sequence[str]) -> list[list[str]]:
    """Names of the inputs that differ bit for bit from their pristine copies, per case; all the
    comparisons go to the host in one copy."""
    import torch

    flags, where = [], []
    for c, (values, pristine) in enumerate(cases):
        for n, v, p in zip(names, values, pristine):
            if not isinstance(p, torch.Tensor):
                continue
            if not (isinstance(v, torch.Tensor) and v.shape == p.shape and v.dtype == p.dtype):
                where.append((c, n, None))
            elif p.numel():
                where.append((c, n, len(flags)))
                flags.append((words(v) != words(p)).any())  # bit for bit, a word at a time
    found = torch.stack(flags).tolist() if flags else []
    out: list[list[str]] = [[] for _ in cases]
    for c, n, k in where:
        if k is None or found[k]:
            out[c].append(n)
    return out


def poisoned_outputs(definition: Mapping, axes: Mapping[str, int], device: str) -> list:
    """DPS output buffers filled with NaN (floats) or a sentinel, never uninitialised memory."""
    return filled_outputs(output_fills(definition, axes), device)


def filled_outputs(fills: Sequence[tuple], device: str) -> list:
    """Fresh buffers from ``output_fills`` (worked out once, used for every timed call)."""
    import torch

    return [torch.full(shape, value, dtype=dtype, device=device) for shape, dtype, value in fills]


def output_fills(definition: Mapping, axes: Mapping[str, int]) -> list[tuple]:
    """(shape, torch dtype, poison value) per output."""
    import torch

    from .inputs import is_float, shape_of, torch_dtype

    out = []
    for spec in definition["outputs"]:
        dtype = torch_dtype(spec["dtype"])
        if is_float(spec["dtype"]) and spec["dtype"] != "float4_e2m1":
            value = float("nan")
        elif spec["dtype"] == "bool":
            value = True
        else:
            value = 255 if dtype == torch.uint8 else -1
        out.append((shape_of(spec, axes), dtype, value))
    return out


def _storage_span(t) -> tuple[int, int]:
    start = t.untyped_storage().data_ptr()
    return start, start + t.untyped_storage().nbytes()


def aliases(out, inputs: Sequence[Any]) -> bool:
    import torch

    if not isinstance(out, torch.Tensor) or out.untyped_storage().nbytes() == 0:
        return False
    lo, hi = _storage_span(out)
    for v in inputs:
        if isinstance(v, torch.Tensor) and v.untyped_storage().nbytes():
            a, b = _storage_span(v)
            if lo < b and a < hi:
                return True
    return False


def output_stats(definition: Mapping, outs: Sequence[Any], refs: Sequence[Any],
                 inputs: Sequence[Any] = ()) -> list[dict]:
    """One dict per output: type, shape, dtype, non-finite counts, max errors, mismatches."""
    return output_stats_many(definition, [(outs, refs, inputs)])[0]


def output_stats_many(definition: Mapping, calls: Sequence[tuple[Sequence, Sequence, Sequence]],
                      budget_bytes: int = 1 << 28, errors: bool = True) -> list[list[dict]]:
    """``output_stats`` for many (outputs, references, inputs) calls at once.

    Outputs of the same spec are stacked and compared in a few batched kernels, and every figure
    comes to the host in one copy: per-call comparisons cost a sync and ~20 launches each, which
    for small kernels was most of an evaluation's time.

    ``errors=False`` (timed calls, whose passing figures are not kept) first checks every output
    with a third of the passes (``within_tolerance_rows``) and computes the full figures only for
    the outputs that check flags; a passing output then has ``max_abs``/``max_rel`` None.
    """
    result, pending = [], {}  # output index -> [(stats dict, out, ref)]
    for outs, refs, inputs in calls:
        stats = []
        for j, (spec, out, ref) in enumerate(zip(definition["outputs"], outs, refs)):
            s = _describe(spec, out, ref, inputs)
            stats.append(s)
            if s.get("comparable"):
                pending.setdefault(j, []).append((s, out, ref))
        result.append(stats)
    groups = [(tolerance_for(definition, items[0][0]["dtype"]), items) for items in pending.values()]
    if not errors:
        groups = _flagged(groups, budget_bytes)
    _fill_figures(groups, budget_bytes)
    for stats in result:
        for s in stats:
            s.pop("comparable", None)
    return result


def _stacked(groups: list, budget_bytes: int):
    """For each group's (stats, out, ref) items, in runs within ``budget_bytes``: (stats dicts,
    stacked outputs, stacked references, atol, rtol)."""
    import torch

    for (atol, rtol), items in groups:
        for chunk in _batches(items, items[0][2].numel(), budget_bytes):
            yield ([s for s, _, _ in chunk], torch.stack([o for _, o, _ in chunk]),
                   torch.stack([r for _, _, r in chunk]), atol, rtol)


def _fill_figures(groups: list, budget_bytes: int) -> None:
    """Full ``compare_rows`` figures for each group's (stats, out, ref) items, in one host copy."""
    import torch

    rows, owners = [], []
    for stats, outs, refs, atol, rtol in _stacked(groups, budget_bytes):
        rows.append(compare_rows(outs, refs, atol, rtol))
        owners.extend(stats)
    found = torch.cat([r.reshape(-1, 5) for r in rows]).tolist() if rows else []
    for s, figures in zip(owners, found):
        s.update(_figures(s["numel"], figures))


def _flagged(groups: list, budget_bytes: int) -> list:
    """Marks the floating-point items that are finite and within tolerance everywhere as passing
    (one host copy for all) and returns the groups of the rest, which need the full figures."""
    import torch

    checks, owners = [], []
    arithmetic = [(tol, items) for tol, items in groups if _arithmetic_float(items[0][2])]
    for stats, outs, refs, atol, rtol in _stacked(arithmetic, budget_bytes):
        checks.append(within_tolerance_rows(outs, refs, atol, rtol))
        owners.extend(stats)
    passed = {id(s) for s, ok in zip(owners, torch.cat(checks).tolist() if checks else []) if ok}
    for s in owners:
        if id(s) in passed:
            s.update(mismatched=0, nonfinite=0, ref_nonfinite=0, max_abs=None, max_rel=None)
    rest = [(tol, [item for item in items if id(item[0]) not in passed]) for tol, items in groups]
    return [(tol, items) for tol, items in rest if items]


def _describe(spec: Mapping, out, ref, inputs: Sequence[Any]) -> dict:
    import torch

    s: dict[str, Any] = {"name": spec["name"], "plain_tensor": type(out) is torch.Tensor,
                         "ref_shape": list(ref.shape), "ref_dtype": dtype_name(ref),
                         "expected_dtype": spec["dtype"]}
    if not isinstance(out, torch.Tensor):
        return s | {"shape": None, "dtype": type(out).__name__}
    s.update(shape=list(out.shape), dtype=dtype_name(out), aliases_input=aliases(out, inputs))
    if s["plain_tensor"] and list(out.shape) == list(ref.shape) and out.dtype == ref.dtype:
        s.update(numel=ref.numel(), comparable=True)
    return s


def _figures(numel: int, found: Sequence[float]) -> dict:
    return {"numel": numel, "mismatched": int(found[0]), "nonfinite": int(found[1]),
            "ref_nonfinite": int(found[2]), "max_abs": found[3], "max_rel": found[4]}


def compare(out, ref, atol: float, rtol: float) -> dict:
    return _figures(ref.numel(), compare_rows(out[None], ref[None], atol, rtol)[0].tolist())


def compare_rows(outs, refs, atol: float, rtol: float):
    """Row i of ``outs`` against row i of ``refs`` (both [n, ...]): an [n, 5] float64 device tensor
    of mismatches, non-finite outputs where the reference is finite, non-finite references, max
    abs and max rel error over the elements finite on both sides (allclose:
    |out - ref| <= atol + rtol * |ref|; a non-finite element matches only the same value, NaN
    matching NaN)."""
    import torch

    f64 = torch.float64  # counts above 2**24 stay exact
    n = refs.shape[0]
    o, r = outs.reshape(n, -1), refs.reshape(n, -1)
    if r.shape[1] == 0:
        return torch.zeros(n, 5, dtype=f64, device=r.device)
    if not (r.is_floating_point() and r.dtype.itemsize >= 1) or r.dtype == torch.bool:
        bad = (o != r).sum(1).to(f64)
        zero, flag = torch.zeros_like(bad), (bad > 0).to(f64)
        return torch.stack([bad, zero, zero, flag, flag], 1)
    wide = _wide(r.dtype)
    # This runs over every timed output, so it keeps to few full-size passes.
    o, r = o.to(wide), r.to(wide)
    ref_abs, diff = r.abs(), (o - r).abs_()
    r_fin = ref_abs < float("inf")  # false for NaN too
    both = (o.abs() < float("inf")) & r_fin
    ok = (diff <= ref_abs.mul(rtol).add_(atol)) & both
    ok |= (o == r) | (torch.isnan(o) & torch.isnan(r))  # equal infinities, NaN against NaN
    counts = torch.stack([ok.sum(1), r_fin.sum(1), both.sum(1)], 1).to(f64)
    diff = torch.where(both, diff, 0.0)
    max_abs = diff.amax(1)
    max_rel = diff.div_(ref_abs.nan_to_num_(nan=0.0).clamp_min_(max(atol, 1e-12))).amax(1)
    width = float(r.shape[1])
    return torch.stack([width - counts[:, 0], counts[:, 1] - counts[:, 2], width - counts[:, 1],
                        max_abs.to(f64), max_rel.to(f64)], 1)


def _wide(dtype):
    """The dtype comparisons compute in: float64 for 32- and 64-bit floats, float32 below."""
    import torch

    return torch.float64 if dtype in (torch.float32, torch.float64) else torch.float32


def _arithmetic_float(t) -> bool:
    """Floating point with arithmetic on the device (packed fp4 has none: compared as bits)."""
    return t.is_floating_point() and "float4" not in str(t.dtype)


def within_tolerance_rows(outs, refs, atol: float, rtol: float):
    """Row i of floating-point ``outs`` against row i of ``refs``: a [n] bool device tensor, True
    where every element is finite on both sides and |out - ref| <= atol + rtol * |ref|. A third
    of ``compare_rows``'s passes: NaN or an infinity on either side makes out - ref - tolerance
    NaN or +inf (inf - inf is NaN), which fails the row, and ``amax`` propagates NaN. A False row
    is not necessarily a mismatch (NaN against NaN matches): ``compare_rows`` decides those."""
    import torch

    n = refs.shape[0]
    if refs[0].numel() == 0:
        return torch.ones(n, dtype=torch.bool, device=refs.device)
    wide = _wide(refs.dtype)
    o, r = outs.reshape(n, -1).to(wide), refs.reshape(n, -1).to(wide)
    excess = (o - r).abs_().sub_(r.abs().mul_(rtol).add_(atol))
    return excess.amax(1) <= 0


def trial_status(trial: Mapping, required_matched_ratio: float = 1.0) -> tuple[str, str]:
    """(status, why) for one trial's raw record, with the checks in their fixed order."""
    if trial.get("error"):
        return "RUNTIME_ERROR", trial["error"]
    violations = [v for v in VIOLATIONS if trial.get(v)]
    if violations:
        return "RUNTIME_ERROR", f"protocol violation: {', '.join(violations)} ({trial.get(violations[0])})"
    for s in trial["outputs"]:
        if not s["plain_tensor"]:
            return "RUNTIME_ERROR", f"output {s['name']} is a {s['dtype']}, not a torch.Tensor"
        if s.get("aliases_input"):
            return "RUNTIME_ERROR", f"output {s['name']} shares memory with an input"
    for s in trial["outputs"]:
        if s["shape"] != s["ref_shape"]:
            return "INCORRECT_SHAPE", f"output {s['name']}: shape {s['shape']} != reference {s['ref_shape']}"
    for s in trial["outputs"]:
        if s["dtype"] != s["ref_dtype"]:
            return "INCORRECT_DTYPE", f"output {s['name']}: dtype {s['dtype']} != reference {s['ref_dtype']}"
    for s in trial["outputs"]:
        if s["nonfinite"] and not s["ref_nonfinite"]:
            return "INCORRECT_NUMERICAL", f"output {s['name']}: {s['nonfinite']} NaN/Inf values where the reference is finite"
    for s in trial["outputs"]:
        if s.get("sampling"):
            ok, why = sampling.verdict(s["sampling"])
            if not ok:
                return "INCORRECT_NUMERICAL", f"output {s['name']}: {why}"
    for s in trial["outputs"]:
        allowed = (1.0 - required_matched_ratio) * s["numel"]
        if s["mismatched"] > allowed:
            return "INCORRECT_NUMERICAL", (f"output {s['name']}: {s['mismatched']}/{s['numel']} elements out of "
                                           f"tolerance (max abs {s['max_abs']:.3g}, max rel {s['max_rel']:.3g})")
    return "PASSED", ""
