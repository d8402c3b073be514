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


def same_bits(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(bits(a).equal(bits(b)))


def fingerprint(values: Sequence[Any]) -> list:
    """Cheap exact checksum per input (sum and sum of squares of the raw bits).

    The sums stay on the device until one copy to the host at the end: this runs for every
    input set of every evaluation, and a sync per tensor adds up.
    """
    import torch

    sums = []
    for v in values:
        if isinstance(v, torch.Tensor):
            total = squares = None
            for chunk in bits(v).reshape(-1).split(1 << 24):  # bounded temporaries for big KV caches
                wide = chunk.to(torch.int64)
                t, q = wide.sum(), (wide * wide).sum()
                total, squares = (t, q) if total is None else (total + t, squares + q)
            if total is None:
                total = squares = torch.zeros((), dtype=torch.int64, device=v.device)
            sums.append(torch.stack([total, squares]))
    found = iter(torch.stack(sums).tolist() if sums else [])
    return [tuple(next(found)) if isinstance(v, torch.Tensor) else v for v in values]


def clone_inputs(values: Sequence[Any]) -> list:
    import torch

    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def mutated(values: Sequence[Any], pristine: Sequence[Any], names: Sequence[str]) -> list[str]:
    import torch

    return [n for n, v, p in zip(names, values, pristine)
            if isinstance(p, torch.Tensor) and not (isinstance(v, torch.Tensor) and same_bits(v, p))]


def poisoned_outputs(definition: Mapping, axes: Mapping[str, int], device: str) -> list:
    """DPS output buffers filled with NaN (floats) or a sentinel, never uninitialised memory."""
    import torch

    from .inputs import is_float, shape_of, torch_dtype

    outs = []
    for spec in definition["outputs"]:
        dtype = torch_dtype(spec["dtype"])
        shape = shape_of(spec, axes)
        if is_float(spec["dtype"]) and spec["dtype"] != "float4_e2m1":
            outs.append(torch.full(shape, float("nan"), dtype=dtype, device=device))
        elif spec["dtype"] == "bool":
            outs.append(torch.ones(shape, dtype=dtype, device=device))
        else:
            outs.append(torch.full(shape, -1 if dtype != torch.uint8 else 255, dtype=dtype, device=device))
    return outs


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
    import torch

    stats = []
    for spec, out, ref in zip(definition["outputs"], outs, refs):
        s: dict[str, Any] = {"name": spec["name"], "plain_tensor": type(out) is torch.Tensor,
                             "ref_shape": list(ref.shape), "ref_dtype": dtype_name(ref),
                             "expected_dtype": spec["dtype"]}
        stats.append(s)
        if not isinstance(out, torch.Tensor):
            s.update(shape=None, dtype=type(out).__name__)
            continue
        s.update(shape=list(out.shape), dtype=dtype_name(out), aliases_input=aliases(out, inputs))
        if s["plain_tensor"] and list(out.shape) == list(ref.shape) and out.dtype == ref.dtype:
            s.update(compare(out, ref, *tolerance_for(definition, s["dtype"])))
    return stats


def compare(out, ref, atol: float, rtol: float) -> dict:
    import torch

    numel = ref.numel()
    if not (ref.is_floating_point() and ref.dtype.itemsize >= 1) or ref.dtype == torch.bool:
        bad = int((out != ref).sum()) if numel else 0
        return {"numel": numel, "mismatched": bad, "nonfinite": 0, "ref_nonfinite": 0,
                "max_abs": float(bad > 0), "max_rel": float(bad > 0)}
    wide = torch.float64 if ref.dtype in (torch.float32, torch.float64) else torch.float32
    o, r = out.to(wide), ref.to(wide)
    o_fin, r_fin = torch.isfinite(o), torch.isfinite(r)
    both = o_fin & r_fin
    diff = torch.where(both, (o - r).abs(), torch.zeros_like(o))
    rel = diff / r.abs().clamp_min(max(atol, 1e-12))
    same_special = (~r_fin) & ((o == r) | (torch.isnan(o) & torch.isnan(r)))
    bad = (both & (diff > atol + rtol * r.abs())) | (~both & ~same_special)
    if not numel:
        return {"numel": 0, "mismatched": 0, "nonfinite": 0, "ref_nonfinite": 0, "max_abs": 0.0, "max_rel": 0.0}
    # One device-to-host copy for all five figures: this runs after every timed call.
    f64 = torch.float64  # counts above 2**24 stay exact
    found = torch.stack([bad.sum().to(f64), (~o_fin & r_fin).sum().to(f64), (~r_fin).sum().to(f64),
                         diff.max().to(f64), rel.max().to(f64)]).tolist()
    return {"numel": numel, "mismatched": int(found[0]), "nonfinite": int(found[1]),
            "ref_nonfinite": int(found[2]), "max_abs": found[3], "max_rel": found[4]}


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
