"""One evaluation inside the worker: correctness trials, then timing over rotating input sets.

Samplers (``sampling.is_sampler``) get many seeded draws per trial instead of one call, judged
on support and distribution. Returns raw measurements only (per-trial statistics, timing samples,
what integrity checks saw); ``verdict.py`` in the parent decides the status from them.
"""

from __future__ import annotations

import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from . import correctness as cx
from . import sampling as smp
from . import timing
from .build import BuildError, build_solution
from .inputs import axis_values, make_inputs, trial_seed
from .integrity import Snapshot, watch_calls_into
from .reference import REFERENCE_FILES, load_reference, normalize_outputs

_POOL_SEED_BASE = 1_000_000  # pool sets never share a seed with correctness trials


@dataclass
class Pool:
    """Distinct input sets for timing a workload, made on first use, and the reference's outputs
    and timing on them. ``capacity`` bounds the sets (memory budget, most timed calls)."""
    make: Callable[[int], list]
    capacity: int
    sets: list[list] = field(default_factory=list)
    fingerprints: list = field(default_factory=list)  # device checksums (cx.fingerprint)
    ref_outputs: list[tuple | None] = field(default_factory=list)
    ref_timing: dict = field(default_factory=dict)
    dists: dict = field(default_factory=dict)  # samplers: set index -> exact distribution
    dirty: bool = False
    sealed: bool = False  # from then on a new set is fingerprinted as it is made

    def get(self, i: int) -> list:
        while len(self.sets) <= i:
            values = self.make(len(self.sets))
            self.sets.append(values)
            self.fingerprints.append(cx.fingerprint(values) if self.sealed else None)
            self.ref_outputs.append(None)
        return self.sets[i]

    def seal(self) -> None:
        """Fingerprint the sets made so far in one batched pass, before any solution sees them.
        Only the trusted reference has run on them; one pass for all sets costs the host a few
        launches where fingerprinting each set as it was made cost a few per set."""
        todo = [k for k, fp in enumerate(self.fingerprints) if fp is None]
        if todo:
            for k, fp in zip(todo, cx.fingerprint_many([self.sets[k] for k in todo])):
                self.fingerprints[k] = fp
        self.sealed = True

    def ref_output(self, i: int, reference) -> tuple:
        """The reference's outputs on set ``i`` (computed untimed if its timing never reached it)."""
        if self.ref_outputs[i] is None:
            self.ref_outputs[i] = reference(*self.get(i))
        return self.ref_outputs[i]


@dataclass
class WorkerState:
    device: str
    snapshot: Snapshot
    pools: dict = field(default_factory=dict)
    trials: dict = field(default_factory=dict)  # (workload key, trial) -> (inputs, reference outputs)
    flush: Any = None
    hold: Any = None
    decoded: dict = field(default_factory=dict)  # sha256 -> the current workload's blob tensors
    total_memory: int | None = None


def _sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        return timing._cuda["synchronize"]
    return lambda: None


def _tail(limit: int = 3000) -> str:
    return traceback.format_exc()[-limit:]


def _set_bytes(values) -> int:
    import torch

    return sum(v.numel() * v.element_size() for v in values if isinstance(v, torch.Tensor))


def evaluate(state: WorkerState, job: Mapping) -> dict:
    opts, definition, solution = job["options"], job["definition"], job["solution"]
    raw: dict[str, Any] = {"trials": [], "timing": None, "reference_timing": None, "tampered": [],
                           "build_error": None, "reference_error": None, "fatal": False}
    try:
        reference = load_reference(definition)
    except Exception:
        raw["reference_error"] = _tail()
        return raw
    try:
        with _phase(raw, "build"):
            fn = build_solution(solution, state.device)
    except BuildError as exc:
        raw["build_error"] = str(exc)[-3000:]
        return _finish(state, raw)
    try:
        with _phase(raw, "trials"):
            ok = _trials(state, job, reference, fn, raw)
        if ok and opts.get("reps", 0) > 0:
            with _phase(raw, "timing"):
                _timing(state, job, reference, fn, raw)
    except Exception as exc:
        raw["trials"].append({"error": _tail(), "outputs": []})
        raw["fatal"] = _fatal(exc)
    return _finish(state, raw)


@contextmanager
def _phase(raw: dict | None, name: str):
    """Seconds spent per phase, kept in the row's extra statistics (where a run's time goes)."""
    if raw is None:
        yield
        return
    started = timing.now_ms()
    try:
        yield
    finally:
        raw.setdefault("phases", {})[name] = round((timing.now_ms() - started) / 1e3, 4)


def _fatal(exc: BaseException) -> bool:
    """A CUDA error other than OOM leaves the context unusable: the worker must be replaced."""
    text = f"{type(exc).__name__}: {exc}"
    return ("CUDA" in text or "cuda" in text) and "out of memory" not in text


def _finish(state: WorkerState, raw: dict) -> dict:
    raw["tampered"] = state.snapshot.changed()
    failed = raw["build_error"] or any(t.get("error") for t in raw["trials"])
    if failed:  # e.g. after an OOM, give the cached blocks back before the next job
        _release(state)
    return raw


def _release(state: WorkerState, always: bool = True) -> None:
    """Give cached allocator blocks back to the driver: always after a failure (an OOM), and
    between workloads only once the cache holds over half the device (returning them costs the
    next workload a cudaMalloc, with its implicit sync, for every block it needs again)."""
    if state.device.startswith("cuda"):
        import torch

        if always or torch.cuda.memory_reserved(state.device) > 0.5 * _total_memory(state):
            torch.cuda.empty_cache()


def _total_memory(state: WorkerState) -> int:
    if state.total_memory is None:
        import torch

        state.total_memory = torch.cuda.get_device_properties(state.device).total_memory
    return state.total_memory


def _inputs(state: WorkerState, job: Mapping, index: int) -> list:
    opts = job["options"]
    seed = trial_seed(opts.get("seed", 0), job["workload"]["uuid"], index, opts.get("salt", ""))
    if state.decoded and not state.decoded.keys() <= set(job["blobs"]):
        state.decoded.clear()  # another workload's blobs
    values = make_inputs(job["definition"], job["workload"], job["blobs"], state.device, seed,
                         loaded=state.decoded)
    return list(values.values())


def _call_args(job: Mapping, args: list, device: str, axes: Mapping | None = None,
               fills: list | None = None) -> tuple[list, list]:
    """Arguments for one call and the DPS output buffers (NaN-poisoned), if any."""
    if not job["solution"]["destination_passing_style"]:
        return args, []
    if fills is None:
        fills = cx.output_fills(job["definition"], axes or axis_values(job["definition"], job["workload"]))
    outs = cx.filled_outputs(fills, device)
    return [*args, *outs], outs


def _trials(state: WorkerState, job: Mapping, reference, fn, raw: dict) -> bool:
    if smp.is_sampler(job["definition"]):
        from .sampler_eval import sampler_trials

        return sampler_trials(state, job, reference, fn, raw)
    definition = job["definition"]
    done, failed = [], False  # (trial, outputs, reference outputs, solution's inputs, pristine inputs)
    for t in range(job["options"].get("trials", 3)):
        call = _trial_call(state, job, reference, fn, raw, t)
        if call is None:  # a raise or a failed reference; the trials before it are still checked
            failed = True
            break
        done.append(call)
    if raw.get("fatal"):  # the CUDA context is gone: nothing more can run on it
        return False
    # Checked together after the calls: one copy to the host for all trials' figures. Each call
    # got its own inputs and outputs, so a later call cannot change what an earlier one returned,
    # unless it hands back the same tensor again, which is a protocol violation of its own.
    stats = cx.output_stats_many(definition, [(outs, refs, mine) for _, outs, refs, mine, _ in done])
    changed = cx.mutated_many([(mine, inputs) for *_, mine, inputs in done], [i["name"] for i in definition["inputs"]])
    _mark_reused(done, job["solution"]["destination_passing_style"])
    ratio = job["options"].get("required_matched_ratio", 1.0)
    for (trial, *_), found, names in zip(done, stats, changed):
        trial["input_mutated"] = ", ".join(names) or None
        trial["outputs"] = found
    return not failed and all(cx.trial_status(trial, ratio)[0] == "PASSED" for trial, *_ in done)


def _trial_call(state: WorkerState, job: Mapping, reference, fn, raw: dict, t: int):
    """Trial ``t``: the solution called once on a clone of the trial's inputs; None if it failed."""
    device, sync = state.device, _sync(state.device)
    try:
        inputs, refs = _trial_case(state, job, reference, t)
        mine = cx.clone_inputs(inputs)
        sync()
    except Exception:
        raw["reference_error"] = _tail()
        return None
    trial: dict[str, Any] = {"outputs": []}
    raw["trials"].append(trial)
    args, outs = _call_args(job, mine, device)
    try:
        with watch_calls_into(REFERENCE_FILES) as hits:
            result = fn(*args)
            sync()
        if not outs:
            outs = list(normalize_outputs(result, [o["name"] for o in job["definition"]["outputs"]]))
    except Exception as exc:
        trial["error"] = _tail()
        raw["fatal"] = _fatal(exc)
        return None
    trial["calls_reference"] = "; ".join(hits) or None
    return trial, outs, refs, mine, inputs


def _mark_reused(done: list, dps: bool) -> None:
    """A returned tensor whose memory a later trial returned again: the earlier trial's values are
    gone, so that trial fails as a protocol violation, not with confusing numbers."""
    if dps:
        return
    seen: dict[int, dict] = {}
    for trial, outs, *_ in done:
        for o in outs:
            if hasattr(o, "untyped_storage") and o.untyped_storage().nbytes():
                first = seen.setdefault(o.untyped_storage().data_ptr(), trial)
                if first is not trial:
                    first["output_reused"] = "the same output tensor was returned by several correctness trials"


def _trial_case(state: WorkerState, job: Mapping, reference, t: int) -> tuple[list, Any]:
    """Trial ``t``'s inputs and reference outputs, made once per workload and shared by every
    solution evaluated on it (the seeds do not depend on the solution; a slow reference then runs
    3 times per workload, not 3 times per solution). Solutions get clones, never these tensors."""
    opts = job["options"]
    workload = (job["definition"]["name"], job["workload"]["uuid"], opts.get("seed", 0), opts.get("salt", ""))
    if state.trials and next(iter(state.trials))[0] != workload:
        state.trials.clear()  # one workload's cases at a time keeps memory bounded
    case = state.trials.get((workload, t))
    if case is None:
        inputs = _inputs(state, job, t)
        case = state.trials[(workload, t)] = (inputs, reference(*inputs))
    return case


def _pool(state: WorkerState, job: Mapping, reference) -> Pool:
    key = (job["definition"]["name"], job["workload"]["uuid"], job["options"].get("seed", 0),
           job["options"].get("reps"), bool(job["options"].get("cuda_graph")))
    pool = state.pools.get(key)
    if pool is not None and not pool.dirty:
        return pool
    state.pools.clear()  # one workload's sets at a time keeps device memory bounded
    _release(state, always=False)
    opts = job["options"]
    make = lambda i: _inputs(state, job, _POOL_SEED_BASE + i)  # noqa: E731
    first = make(0)
    budget = int(opts.get("pool_bytes", 1 << 30))
    capacity = max(2, min(int(opts["reps"]), budget // max(_set_bytes(first), 1)))
    pool = Pool(make=lambda i: first if i == 0 else _same_structure(make(i), first), capacity=capacity)

    def keep(i, result, args):
        if pool.ref_outputs[i] is None:
            pool.ref_outputs[i] = result

    pool.ref_timing = _measure(state, job, reference, pool.get, keep, capacity, warm_args=_warm_copy(first))
    pool.seal()
    state.pools[key] = pool
    return pool


def _same_structure(values: list, first: list) -> list:
    """Timed input sets share the first set's integer and bool tensors (page tables, indptr,
    positions, routing) and rotate only the floating-point data, as the layers of one serving step
    do: one batch structure, different weights and caches. Solutions may then keep per-structure
    plans (flashinfer's wrappers plan once per step) instead of timing a re-plan on every call;
    correctness trials still draw a fresh structure each."""
    return [f if _is_structure(f) else v for v, f in zip(values, first)]


def _is_structure(value) -> bool:
    import torch

    return isinstance(value, torch.Tensor) and not (value.is_floating_point() or value.is_complex())


def _warm_copy(values: list) -> list:
    """Warm-up arguments: copies of set 0's floating-point data, its structure shared (as the timed
    sets share it), so warm-up never touches the data a timed call is checked on."""
    import torch

    return [v.clone() if isinstance(v, torch.Tensor) and not _is_structure(v) else v for v in values]


def _measure(state: WorkerState, job: Mapping, fn, prepare, finish, n_sets: int, warm_args,
             raw: dict | None = None) -> dict:
    opts, device = job["options"], state.device
    sync = _sync(device)
    with _phase(raw, "warmup"):
        host_ms = timing.warm_up(lambda: fn(*warm_args), float(opts.get("warmup_ms", 25.0)), sync)
    with _phase(raw, "timed"):
        return _timed(state, opts, fn, prepare, finish, n_sets, host_ms)


def _timed(state: WorkerState, opts: Mapping, fn, prepare, finish, n_sets: int, host_ms: list) -> dict:
    device, sync = state.device, _sync(state.device)
    reps = int(opts["reps"])
    stop = timing.stop_rule(min(int(opts.get("min_reps", 10)), reps), float(opts.get("ci_width", 0.0)))
    if not device.startswith("cuda"):
        return timing.measure_cpu(fn, prepare, finish, reps, n_sets, stop=stop)
    if opts.get("cuda_graph"):
        try:
            return timing.measure_cuda_graph(fn, prepare, finish, reps, n_sets)
        except Exception as exc:  # e.g. a reference that syncs (.item()) cannot be captured
            sync()
            fallback = f"graph capture failed ({type(exc).__name__}: {str(exc)[:200]}); timed with events"
    else:
        fallback = None
    if opts.get("l2_flush", True) and state.flush is None:
        state.flush = timing.L2Flush(device)
    if opts.get("hold", True) and state.hold is None:
        state.hold = timing.make_hold()
    result = timing.measure_cuda(fn, prepare, finish, reps, n_sets,
                                 state.flush if opts.get("l2_flush", True) else None,
                                 state.hold if opts.get("hold", True) else None, host_ms, should_stop=stop)
    # Measured again for each timing: a busy host (other processes) wakes from the sync late and
    # lengthens every wide tail, which must not read as work hidden from the stream.
    result["sync_overhead_ms"] = timing.sync_overhead_ms()
    if fallback:
        result["fallback"] = fallback
    return result


def _timing(state: WorkerState, job: Mapping, reference, fn, raw: dict) -> None:
    definition, device = job["definition"], state.device
    with _phase(raw, "pool"):
        pool = _pool(state, job, reference)
    raw["reference_timing"] = pool.ref_timing | {"input_sets": min(len(pool.ref_timing.get("samples_ms") or []),
                                                                   pool.capacity)}
    dps = job["solution"]["destination_passing_style"]
    out_names = [o["name"] for o in definition["outputs"]]
    kept: list[tuple[int, list]] = []
    fills = cx.output_fills(definition, axis_values(definition, job["workload"])) if dps else None

    def prepare(i):
        return _call_args(job, pool.get(i), device, fills=fills)[0]

    def finish(i, result, args):
        # Inputs are checked once per set after the loop, not after every call: a change made by
        # any timed call stays in the set's memory until then, and checksumming a large KV cache
        # 50 times would cost more than the kernel being timed.
        outs = list(args[len(pool.sets[i]):]) if dps else list(normalize_outputs(result, out_names))
        kept.append((i, outs))

    warm = _call_args(job, _warm_copy(pool.get(0)), device, fills=fills)[0]
    capped = dict(job, options=dict(job["options"], reps=_reps_for_kept_outputs(state, job, pool)))
    result = _measure(state, capped, fn, prepare, finish, pool.capacity, warm_args=warm, raw=raw)
    with _phase(raw, "verify"):
        _verify(definition, pool, kept, reference, job, result)
    raw["timing"] = result


#: Every timed call's outputs are kept until the loop ends (each is checked against the reference
#: then): at most this share of the device's memory, whatever ``reps`` asks for.
KEPT_OUTPUTS_SHARE = 0.25


def _reps_for_kept_outputs(state: WorkerState, job: Mapping, pool: Pool) -> int:
    """``reps``, lowered where that many kept outputs would not fit in ``KEPT_OUTPUTS_SHARE`` of
    the device (the reference's outputs on set 0 have the solution's output sizes), but never
    below ``min_reps``: 50 calls of a kernel writing 1 GiB would keep 50 GiB."""
    reps = int(job["options"]["reps"])
    if not state.device.startswith("cuda") or not pool.ref_outputs or pool.ref_outputs[0] is None:
        return reps
    out_bytes = _set_bytes(list(pool.ref_outputs[0]))
    fit = int(KEPT_OUTPUTS_SHARE * _total_memory(state)) // max(out_bytes, 1)
    return max(min(reps, fit), min(int(job["options"].get("min_reps", 10)), reps))


def _verify(definition: Mapping, pool: Pool, kept: list, reference, job: Mapping, result: dict) -> None:
    dps = job["solution"]["destination_passing_style"]
    # The sets this solution was given (the only ones it holds), checked together in one copy.
    used = sorted({i for i, _ in kept})
    result["input_sets"] = len(used)
    now = cx.fingerprint_many([pool.sets[i] for i in used])
    changed = cx.changed_sets([(pool.fingerprints[i], fp) for i, fp in zip(used, now)])
    mutated_sets = [i for i, flag in zip(used, changed) if flag]
    if mutated_sets:  # outputs computed from changed inputs cannot be checked: the run fails anyway
        pool.dirty = True
        result["input_mutated"] = f"timed calls changed input set(s) {mutated_sets}"
    else:
        for i in used:
            pool.ref_output(i, reference)
        result.update(_verify_timed(definition, pool, kept, job["options"].get("required_matched_ratio", 1.0), dps))


def _verify_timed(definition: Mapping, pool: Pool, kept: list, ratio: float, dps: bool) -> dict:
    """Check every timed call's output against the reference output for its input set."""
    if smp.is_sampler(definition):
        from .sampler_eval import verify_timed_samples

        return verify_timed_samples(definition, pool, kept, dps)
    bad, first_reason, seen_ptrs, reused = 0, None, set(), False
    found = cx.output_stats_many(definition, [(outs, pool.ref_outputs[i], pool.sets[i]) for i, outs in kept],
                                 errors=False)
    for (i, outs), stats in zip(kept, found):
        status, why = cx.trial_status({"outputs": stats}, ratio)
        if status != "PASSED":
            bad += 1
            first_reason = first_reason or f"{status}: {why}"
        if not dps:
            ptrs = {o.untyped_storage().data_ptr() for o in outs if hasattr(o, "untyped_storage")}
            reused = reused or bool(ptrs & seen_ptrs)
            seen_ptrs |= ptrs
    return {"verified_calls": len(kept), "mismatched_calls": bad, "mismatch_reason": first_reason,
            "output_reused": "the same output tensor was returned by several timed calls" if reused else None}
