"""Evaluate a sampler inside the worker: seeded draws per trial, and checks on timed calls.

The statistics and thresholds are ``sampling.py``'s; this module feeds them from the worker's
inputs, solution calls and reference, the way ``evaluate.py`` does for elementwise outputs.
"""

from __future__ import annotations

from typing import Any, Mapping

from . import correctness as cx
from . import sampling as smp
from .evaluate import Pool, WorkerState, _call_args, _fatal, _inputs, _sync, _tail
from .inputs import axis_values, trial_seed
from .integrity import watch_calls_into
from .reference import REFERENCE_FILES, normalize_outputs, reference_module


def sampler_trials(state: WorkerState, job: Mapping, reference, fn, raw: dict) -> bool:
    """Samplers: many draws per row with fresh seeds, judged on support and distribution."""
    for t in range(job["options"].get("trials", 3)):
        try:
            setup = _sampler_setup(state, job, reference, t)
        except Exception:
            raw["reference_error"] = _tail()
            return False
        trial: dict[str, Any] = {"outputs": []}
        raw["trials"].append(trial)
        if not _sampler_trial(state, job, fn, setup, trial, raw):
            return False
    return True


def _sampler_setup(state: WorkerState, job: Mapping, reference, t: int) -> dict:
    """Tiled inputs for one trial, the seeds, and the distribution the rows are drawn from."""
    definition, opts = job["definition"], job["options"]
    inputs, axes = smp.first_rows(definition, _inputs(state, job, t), axis_values(definition, job["workload"]))
    draws = smp.draws_per_row(inputs, state.device)
    copies = smp.copies_per_call(definition, inputs, draws)
    tiled, tiled_axes = smp.tile(definition, inputs, axes, copies)
    seed, ref_seed = (trial_seed(opts.get("seed", 0), job["workload"]["uuid"], t, opts.get("salt", "") + tag)
                      for tag in ("|draws", "|reference draws"))
    setup = {"tiled": tiled, "axes": tiled_axes, "copies": copies, "seed": seed, "ref_samples": None,
             "draws": draws,
             "rows": int(axes[smp.row_axis(definition)]) if smp.row_axis(definition) else 1}
    setup["dist"] = smp.exact_distribution(reference_module(definition), inputs)
    if setup["dist"] is None:
        _, ref, _ = smp.draw(lambda: reference(*tiled)[0], setup["rows"], copies, ref_seed, draws)
        setup.update(ref_samples=ref, dist=_empirical(ref))
    _sync(state.device)()
    return setup


def _sampler_trial(state: WorkerState, job: Mapping, fn, setup: dict, trial: dict, raw: dict) -> bool:
    definition, device, sync = job["definition"], state.device, _sync(state.device)
    out_names = [o["name"] for o in definition["outputs"]]
    mine = cx.clone_inputs(setup["tiled"])

    def call():
        args, outs = _call_args(job, mine, device, setup["axes"])
        result = fn(*args)
        sync()
        return outs[0] if outs else normalize_outputs(result, out_names)[0]

    try:
        with watch_calls_into(REFERENCE_FILES) as hits:
            first, samples, repeated = smp.draw(call, setup["rows"], setup["copies"], setup["seed"],
                                                setup["draws"])
    except Exception as exc:
        trial["error"] = _tail()
        raw["fatal"] = _fatal(exc)
        return False
    trial["calls_reference"] = "; ".join(hits) or None
    names = [i["name"] for i in definition["inputs"]]
    trial["input_mutated"] = ", ".join(cx.mutated(mine, setup["tiled"], names)) or None
    stats = _sample_stats(definition, first, setup["axes"], mine)
    trial["outputs"] = [stats]
    if samples is not None and stats.get("numel") is not None:
        ref_samples, dist = setup["ref_samples"], setup["dist"]
        found = smp.row_stats(samples, dist, ref_samples)
        found.update(repeated=repeated, two_sample=ref_samples is not None,
                     log_collision=setup["copies"] * smp.log_collision(dist))
        if ref_samples is not None:
            found["outside"] = []  # no exact support without a distribution hook
        stats.update(sampling=found, max_abs=max(found["tvd"]), max_rel=max(found["tvd"]))
    return cx.trial_status(trial)[0] == "PASSED"


def _empirical(samples):
    """rows x vocab frequencies of reference draws; the vocabulary ends at the largest id drawn."""
    import torch

    ids = samples.long().t()
    counts = torch.zeros(ids.shape[0], int(ids.max()) + 1, dtype=torch.float64, device=ids.device)
    return counts.scatter_add_(1, ids, torch.ones_like(ids, dtype=torch.float64)) / samples.shape[0]


def _sample_stats(definition: Mapping, out, axes: Mapping, inputs: list) -> dict:
    """Shape/dtype/aliasing of a sampler's first output; value checks come from the draws."""
    import torch

    from .inputs import shape_of

    spec = definition["outputs"][0]
    s: dict[str, Any] = {"name": spec["name"], "plain_tensor": type(out) is torch.Tensor,
                         "ref_shape": list(shape_of(spec, axes)), "ref_dtype": spec["dtype"],
                         "expected_dtype": spec["dtype"]}
    if not isinstance(out, torch.Tensor):
        return s | {"shape": None, "dtype": type(out).__name__}
    s.update(shape=list(out.shape), dtype=cx.dtype_name(out), aliases_input=cx.aliases(out, inputs))
    if s["shape"] == s["ref_shape"] and s["dtype"] == s["ref_dtype"]:
        s.update(numel=out.numel(), mismatched=0, nonfinite=0, ref_nonfinite=0)
    return s


def verify_timed_samples(definition: Mapping, pool: Pool, kept: list, dps: bool) -> dict:
    """Samplers' timed calls: right shape and dtype, inside the kept set, fresh draws per call,
    and all draws together distributed as the reference says (pooled KS test)."""
    bad, first_reason, seen_ptrs, reused, good = 0, None, set(), False, []
    for i, outs in kept:
        trial = {"outputs": cx.output_stats(definition, outs[:1], pool.ref_outputs[i][:1], pool.sets[i])}
        trial["outputs"][0].update(mismatched=0, nonfinite=0, ref_nonfinite=0)
        status, why = cx.trial_status(trial)
        if status != "PASSED":
            bad += 1
            first_reason = first_reason or f"{status}: {why}"
            continue
        good.append((i, outs[0]))
        if not dps:
            ptrs = {o.untyped_storage().data_ptr() for o in outs if hasattr(o, "untyped_storage")}
            reused = reused or bool(ptrs & seen_ptrs)
            seen_ptrs |= ptrs
    stats = _timed_draw_stats(definition, pool, good)
    ok, why = smp.verdict(stats) if stats["draws"] else (True, "")
    if not ok:
        bad += 1
        first_reason = first_reason or f"INCORRECT_NUMERICAL: {why}"
    return {"verified_calls": len(kept), "mismatched_calls": bad, "mismatch_reason": first_reason,
            "output_reused": "the same output tensor was returned by several timed calls" if reused else None,
            "ks": stats.get("ks"), "ks_draws": stats.get("ks_draws")}


def _timed_draw_stats(definition: Mapping, pool: Pool, calls: list) -> dict:
    """Support counts, replays and the pooled PIT of timed calls' draws (one per row and call)."""
    import torch

    outside, draws, seen, repeats, pit = None, 0, {}, {}, []
    for i, out in calls:
        if i not in pool.dists:
            pool.dists[i] = smp.exact_distribution(reference_module(definition), pool.sets[i])
        dist = pool.dists[i]
        if dist is None:
            continue
        found = smp.row_stats(out.reshape(1, -1), dist)["outside"]
        outside = found if outside is None else [a + b for a, b in zip(outside, found)]
        pit.append(smp.uniforms(out.reshape(1, -1), dist, seed=draws))
        draws += 1
        key = cx.bits(out).cpu().numpy().tobytes()
        if key in seen.setdefault(i, set()):
            repeats[i] = smp.log_collision(dist)
        seen[i].add(key)
    pooled = torch.cat(pit) if pit else None
    return {"outside": outside or [], "draws": draws, "tvd": None, "repeated": bool(repeats),
            "log_collision": max(repeats.values(), default=0.0),
            "ks": None if pooled is None else smp.ks_uniform(pooled),
            "ks_draws": 0 if pooled is None else pooled.numel()}
