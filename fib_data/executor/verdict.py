"""The parent's side of an evaluation: raw worker measurements -> one evaluations row.

Statuses and flags are decided here, from numbers, so a worker cannot simply report "PASSED".
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timezone
from typing import Any, Mapping

from ..hashing import environment_hash
from . import sampling
from .correctness import tolerance_for, trial_status
from .roofline import device_peaks, roofline
from .timing import median_ci_width, median_iqr

IMPLAUSIBLE_SPEEDUP = 10.0
#: A device-wide end marker later than the stream's own stop event by more than this (beyond the
#: host round trip: an empty call's, or the other side's of the same evaluation, whichever is
#: longer) means work ran outside the timed stream.
GAP_FLOOR_MS = 0.02
GAP_FRACTION = 0.25


def decide(raw: Mapping, ratio: float = 1.0) -> tuple[str, str, list[str]]:
    """(status, why, flags) from a raw worker record, checks in a fixed order."""
    if raw.get("fault"):
        return raw["fault"], raw.get("fault_message", ""), ["worker_replaced"]
    if raw.get("skipped"):
        return raw["skipped"]["status"], raw["skipped"]["why"], [raw["skipped"]["flag"]]
    if raw.get("reference_error"):
        return "RUNTIME_ERROR", "the reference failed:\n" + raw["reference_error"], ["reference_error"]
    if raw.get("build_error"):
        return "COMPILE_ERROR", raw["build_error"], []
    flags = []
    for trial in raw.get("trials") or []:
        status, why = trial_status(trial, ratio)
        flags += [v for v in ("calls_reference", "input_mutated") if trial.get(v)]
        if status != "PASSED":
            if raw.get("tampered"):
                flags.append("tampered")
            return status, why, flags + (["worker_replaced"] if raw.get("fatal") else [])
    if raw.get("tampered"):
        return ("RUNTIME_ERROR", "the solution changed functions the harness relies on: "
                + ", ".join(raw["tampered"][:8]), ["tampered", "worker_replaced"])
    timed = raw.get("timing") or {}
    if timed.get("input_mutated"):
        return "RUNTIME_ERROR", timed["input_mutated"], ["input_mutated"]
    if timed.get("output_reused"):
        return "RUNTIME_ERROR", timed["output_reused"], ["output_reused"]
    if timed.get("mismatched_calls"):
        return ("INCORRECT_NUMERICAL", f"{timed['mismatched_calls']}/{timed['verified_calls']} timed calls "
                f"gave wrong outputs; first: {timed['mismatch_reason']}", ["timed_output_mismatch"])
    return "PASSED", "", flags


def tail_ms(timed: Mapping | None) -> float:
    """Median of what the device-wide marker adds to the stream's interval, per call."""
    if not timed or not timed.get("wide_ms"):
        return 0.0
    return statistics.median(w - s for w, s in zip(timed["wide_ms"], timed["samples_ms"]))


def latency(timed: Mapping | None, control_tail_ms: float = 0.0) -> dict:
    """Median and IQR, corrected to the device-wide marker when work escaped the timed stream.

    ``control_tail_ms``: the marker's median tail for the other side of the same evaluation (the
    reference for the solution, and the other way round). A busy host wakes from the sync late,
    and the tail grows for both sides alike; work hidden from the stream lengthens one side's only.
    """
    if not timed:
        return {"median": None, "iqr": None, "gap": False}
    samples, wides = timed["samples_ms"], timed.get("wide_ms")
    held = timed.get("held")
    if held and timed.get("hold") == "spin" and 2 * sum(held) >= len(held):
        # Calls the host was still enqueueing when the spin ended have launch latency inside
        # their interval: the spin's length was a guess. Drop them while the held ones are the
        # majority. The latch lets a call go unheld only when the solution itself syncs or
        # stalls past its time limit; dropping those would let a solution pick which calls count.
        samples = [x for x, h in zip(samples, held) if h]
        wides = [x for x, h in zip(wides, held) if h] if wides else wides
    median, iqr = median_iqr(samples)
    unheld = len(held) - sum(held) if held else None
    out = {"median": median, "iqr": iqr, "gap": False, "unheld": unheld,
           "host_bound": bool(held) and 2 * unheld > len(held)}
    if wides:
        overhead = max(statistics.median(timed.get("sync_overhead_ms") or [0.0]), control_tail_ms)
        tails = [w - s for w, s in zip(wides, samples)]
        excess = statistics.median(tails) - overhead
        out["gap_ms"] = excess
        if excess > max(GAP_FLOOR_MS, GAP_FRACTION * median):
            wide, wide_iqr = median_iqr([w - overhead for w in wides])
            out.update(median=wide, iqr=wide_iqr, gap=True, stream_median=median)
    return out


def _error_maxima(raw: Mapping) -> tuple[float | None, float | None]:
    abs_, rel = [], []
    for trial in raw.get("trials") or []:
        for s in trial.get("outputs") or []:
            if "max_abs" in s:
                abs_.append(s["max_abs"])
                rel.append(s["max_rel"])
    return (max(abs_) if abs_ else None), (max(rel) if rel else None)


def evaluation_row(job: Mapping, raw: Mapping, run_id: str, device: str, options: Mapping) -> dict:
    definition, workload, solution = job["definition"], job["workload"], job["solution"]
    status, why, flags = decide(raw, options.get("required_matched_ratio", 1.0))
    env = raw.get("environment") or {}
    timed, reference = raw.get("timing"), raw.get("reference_timing")
    sol, ref = latency(timed, tail_ms(reference)), latency(reference, tail_ms(timed))
    passed = status == "PASSED" and sol["median"]
    row: dict[str, Any] = {
        "run_id": run_id, "definition": definition["name"], "workload_uuid": workload["uuid"],
        "solution": solution["name"], "solution_hash": solution["content_hash"], "status": status,
        "latency_ms": sol["median"] if passed else None,
        "latency_iqr_ms": sol["iqr"] if passed else None,
        "reference_latency_ms": ref["median"], "reference_latency_iqr_ms": ref["iqr"],
        "speedup_factor": None, "device": device, "environment": env,
        "environment_hash": environment_hash(env) if env else "unknown",
        "timestamp": datetime.now(timezone.utc), "timing": _timing_struct(raw, options),
    }
    row["max_absolute_error"], row["max_relative_error"] = _error_maxima(raw)
    if passed and ref["median"]:
        row["speedup_factor"] = ref["median"] / sol["median"]
        if row["speedup_factor"] > IMPLAUSIBLE_SPEEDUP:
            flags.append("implausible_speedup")
    if sol["gap"]:
        flags.append("wall_clock_gap")
    timed = timed or {}
    if timed.get("fallback") or (reference or {}).get("fallback"):
        flags.append("mixed_timers")
    if timed and timed.get("input_sets", 0) < len(timed.get("samples_ms") or []):
        flags.append("input_sets_reused")
    # Most calls enqueued for longer than the hold covered: the median includes host time.
    flags += [name for name, lat in (("host_bound", sol), ("reference_host_bound", ref)) if lat.get("host_bound")]
    peaks = device_peaks(env.get("hardware"), raw.get("measured_peaks"))
    row.update(roofline(definition, workload, row["latency_ms"], peaks))
    row["flags"] = sorted(set(flags))
    row["log"] = "\n".join(x for x in (why, raw.get("log") or "") if x)[-8000:] or None
    row["correctness_extra"] = json.dumps(_extra(definition, raw, sol, ref, peaks), default=str)
    return row


def _timing_struct(raw: Mapping, options: Mapping) -> dict:
    timed = raw.get("timing") or {}
    return {"timer": timed.get("timer"), "warmup_ms": float(options.get("warmup_ms", 0.0)),
            "repetitions": len(timed.get("samples_ms") or []) or None,
            "trials": int(options.get("trials", 0)), "input_sets": timed.get("input_sets"),
            "l2_flush": bool(timed.get("timer") == "cuda_event" and options.get("l2_flush", True)),
            "cuda_graph": timed.get("timer") == "cuda_graph"}


def _extra(definition: Mapping, raw: Mapping, sol: dict, ref: dict, peaks: Mapping) -> dict:
    timed = raw.get("timing") or {}
    dtypes = sorted({o["dtype"] for o in definition["outputs"]})
    extra = {
        "tolerances": {d: tolerance_for(definition, d) for d in dtypes},
        "trials": [{"outputs": [_output_extra(s) for s in t.get("outputs") or []]}
                   for t in raw.get("trials") or []],
        "verified_calls": timed.get("verified_calls"), "mismatched_calls": timed.get("mismatched_calls"),
        "reference_timer": (raw.get("reference_timing") or {}).get("timer"),
        "stream_latency_ms": sol.get("stream_median"), "gap_ms": sol.get("gap_ms"),
        "peaks_source": peaks.get("source"), "wall_s": raw.get("wall_s"),
        "median_ci_width": median_ci_width(timed["samples_ms"]) if timed.get("samples_ms") else None,
        "host_enqueue_ms": statistics.median(timed["host_ms"]) if timed.get("host_ms") else None,
        "hold_ms": statistics.median(timed["hold_ms"]) if timed.get("hold_ms") else None,
        "sync_wait_ms": statistics.median(timed["sync_ms"]) if timed.get("sync_ms") else None,
        "post_call_ms": statistics.median(timed["post_ms"]) if timed.get("post_ms") else None,
        "hold": timed.get("hold"),
        "unheld_calls": sol.get("unheld"), "phases_s": raw.get("phases"),
    }
    if sampling.is_sampler(definition):
        extra["sampling"] = sampling.method()
        if timed.get("ks") is not None:
            extra["sampling"].update(timed_ks=timed["ks"], timed_draws=timed["ks_draws"],
                                     timed_ks_threshold=sampling.ks_threshold(timed["ks_draws"]))
    return extra


def _output_extra(s: Mapping) -> dict:
    out = {k: s.get(k) for k in ("name", "max_abs", "max_rel", "mismatched", "numel")}
    found = s.get("sampling")
    if found:
        out.update(max_tvd=max(found["tvd"], default=None), draws_per_row=found["draws"],
                   tvd_threshold=sampling.tvd_threshold(found["draws"], sampling.BINS,
                                                        bool(found.get("two_sample"))),
                   max_outside=max(found["outside"], default=None), two_sample=found.get("two_sample"))
    return out
