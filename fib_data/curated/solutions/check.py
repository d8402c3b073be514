"""Run a solution row against its definition's reference on one workload, the executor's way.

Used by ``tests/test_solutions.py`` (CPU, small shapes) and ``benchmarks/gpu/check_solutions.py``
(GPU, default workloads). Building, inputs, the reference call and the verdict are the
executor's own (``fib_data.executor``): same input draws and ``prepare``, same tolerance rule,
same protocol checks (inputs left untouched, outputs not aliasing inputs). Samplers are judged on
their draws instead (see ``check_sampler``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...executor import build_solution, make_inputs
from ...executor.correctness import clone_inputs, mutated, output_stats, trial_status
from ...executor.inputs import axis_values, shape_of, torch_dtype
from ...executor.reference import load_reference, normalize_outputs, reference_module

#: Draws per row used to judge a sampler (its outputs are random, never compared elementwise).
SAMPLING_DRAWS = 64


@dataclass
class Outcome:
    status: str  # an evaluations status: PASSED, INCORRECT_NUMERICAL, RUNTIME_ERROR, ...
    max_abs: float = 0.0
    max_rel: float = 0.0
    detail: str = ""


def call(fn, row: dict, definition: dict, args: list, axes: dict[str, int]) -> tuple:
    """Call a solution with the definition's convention: return values, or fill given outputs."""
    import torch

    names = [o["name"] for o in definition["outputs"]]
    if not row["destination_passing_style"]:
        return normalize_outputs(fn(*args), names)
    device = next(a.device for a in args if isinstance(a, torch.Tensor))
    outs = tuple(torch.empty(shape_of(o, axes), dtype=torch_dtype(o["dtype"]), device=device)
                 for o in definition["outputs"])
    fn(*args, *outs)
    return outs


def check_sampler(definition: dict, fn, row: dict, args: list, axes: dict[str, int]) -> Outcome:
    """Every draw must lie in the reference's kept set (top-k then top-p), and the frequency of
    each row's most likely kept token must be within 5 sigma of its probability."""
    import torch

    kept = reference_module(definition).filtered_probs(*args).float()
    top = kept.argmax(dim=-1)
    hits = torch.zeros(kept.shape[0], device=kept.device)
    for _ in range(SAMPLING_DRAWS):
        (samples,) = call(fn, row, definition, args, axes)
        if samples.dtype != torch.int64 or samples.shape != top.shape:
            return Outcome("INCORRECT_DTYPE", detail=f"samples {samples.dtype} {tuple(samples.shape)}")
        if bool((kept.gather(1, samples.long()[:, None]) <= 0).any()):
            return Outcome("INCORRECT_NUMERICAL", detail="a draw fell outside the top-k/top-p set")
        hits += (samples == top).float()
    p = kept.gather(1, top[:, None]).squeeze(1)
    gap = (hits / SAMPLING_DRAWS - p).abs()
    z = float((gap / (p * (1 - p) / SAMPLING_DRAWS).sqrt().clamp_min(1e-3)).max())
    return Outcome("PASSED" if z <= 5 else "INCORRECT_NUMERICAL", float(gap.max()), z,
                   f"max z-score {z:.2f} over {SAMPLING_DRAWS} draws")


def check(definition: dict, row: dict, workload: dict, blobs, device: str, seed: int = 0) -> Outcome:
    """Build ``row``, run it and the reference on the same inputs, and judge the result."""
    fn = build_solution(row, device)
    inputs = make_inputs(definition, workload, blobs, device, seed)
    args = [inputs[s["name"]] for s in definition["inputs"]]
    axes = axis_values(definition, workload)
    if hasattr(reference_module(definition), "filtered_probs"):
        return check_sampler(definition, fn, row, args, axes)
    want = load_reference(definition)(*args)
    pristine = clone_inputs(args)
    got = call(fn, row, definition, args, axes)
    stats = output_stats(definition, got, want, args)
    trial = {"outputs": stats, "input_mutated": ", ".join(
        mutated(args, pristine, [s["name"] for s in definition["inputs"]]))}
    status, why = trial_status(trial)
    return Outcome(status, max((s.get("max_abs", 0.0) for s in stats), default=0.0),
                   max((s.get("max_rel", 0.0) for s in stats), default=0.0), why)
