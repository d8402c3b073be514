"""Latency measurement, run inside the worker.

The clocks are bound here when the worker starts, before any solution code is imported, so a
solution that monkeypatches ``time`` or ``torch.cuda.Event`` cannot change what this module
measures (``integrity.py`` also detects the patch and the worker is replaced).

Every timed call gets its arguments from ``prepare(i)`` (untimed: fresh poisoned DPS outputs)
and hands its result to ``finish(i, result, args)`` (untimed: keep for verification, input
checksums). The caller rotates ``i`` over distinct input sets.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

_clock_ns = time.perf_counter_ns
_cuda: dict[str, Any] = {}


def capture_cuda() -> None:
    """Bind the CUDA timing primitives (called once in the worker, before solutions load)."""
    import torch

    if _cuda or not torch.cuda.is_available():
        return
    _cuda.update(Event=torch.cuda.Event, synchronize=torch.cuda.synchronize,
                 elapsed=torch.cuda.Event.elapsed_time, record=torch.cuda.Event.record,
                 current_stream=torch.cuda.current_stream, CUDAGraph=torch.cuda.CUDAGraph,
                 graph=torch.cuda.graph, Stream=torch.cuda.Stream, stream=torch.cuda.stream)


def now_ms(clock=_clock_ns) -> float:
    return clock() / 1e6


def warm_up(call: Callable[[], Any], budget_ms: float, sync: Callable[[], None], min_calls: int = 2,
            max_calls: int = 1000) -> int:
    start, calls = now_ms(), 0
    while calls < min_calls or (now_ms() - start < budget_ms and calls < max_calls):
        call()
        sync()
        calls += 1
    return calls


def measure_cpu(fn: Callable, prepare: Callable, finish: Callable, reps: int, n_sets: int,
                clock=_clock_ns) -> dict:
    # ``clock`` is bound when this module loads: rebinding timing._clock_ns later changes nothing here.
    samples = []
    for r in range(reps):
        i = r % n_sets
        args = prepare(i)
        t0 = clock()
        result = fn(*args)
        t1 = clock()
        finish(i, result, args)
        samples.append((t1 - t0) / 1e6)
    return {"timer": "wall_clock", "samples_ms": samples}


class L2Flush:
    """Writes a buffer larger than the L2 cache (2x its size, at least 64 MiB) before each timed call."""

    def __init__(self, device: str):
        import torch

        props = torch.cuda.get_device_properties(device)
        size = max(2 * int(getattr(props, "L2_cache_size", 50 << 20)), 64 << 20)
        self.buffer = torch.empty(size // 4, dtype=torch.int32, device=device)

    def __call__(self) -> None:
        self.buffer.zero_()


def measure_cuda(fn: Callable, prepare: Callable, finish: Callable, reps: int, n_sets: int,
                 flush: Callable[[], None] | None) -> dict:
    """CUDA events on the current stream around each call, plus a device-wide end marker.

    ``wide_ms`` ends at an event recorded after ``torch.cuda.synchronize()`` (all streams), so
    work hidden on a side stream shows up there even when the stream's own events miss it.
    """
    Event, sync = _cuda["Event"], _cuda["synchronize"]
    stream = _cuda["current_stream"]()
    marks = []
    for r in range(reps):
        i = r % n_sets
        args = prepare(i)
        start, stop, wide = Event(enable_timing=True), Event(enable_timing=True), Event(enable_timing=True)
        if flush is not None:
            flush()
        start.record(stream)
        result = fn(*args)
        stop.record(stream)
        sync()
        wide.record(stream)
        finish(i, result, args)
        marks.append((start, stop, wide))
    sync()
    elapsed = _cuda["elapsed"]
    return {"timer": "cuda_event",
            "samples_ms": [elapsed(a, b) for a, b, _ in marks],
            "wide_ms": [elapsed(a, c) for a, _, c in marks]}


def sync_overhead_ms(reps: int = 20) -> list[float]:
    """What the device-wide end marker adds for an empty call (host round trip)."""
    Event, sync = _cuda["Event"], _cuda["synchronize"]
    stream = _cuda["current_stream"]()
    out = []
    for _ in range(reps):
        stop, wide = Event(enable_timing=True), Event(enable_timing=True)
        stop.record(stream)
        sync()
        wide.record(stream)
        sync()
        out.append(_cuda["elapsed"](stop, wide))
    return out


def measure_cuda_graph(fn: Callable, prepare: Callable, finish: Callable, reps: int, n_sets: int,
                       replays: int = 5) -> dict:
    """Capture ``reps`` calls over the rotating sets in one graph, replay it; per-call mean per replay."""
    Event, sync = _cuda["Event"], _cuda["synchronize"]
    side = _cuda["Stream"]()
    arg_sets = [prepare(r % n_sets) for r in range(reps)]
    side.wait_stream(_cuda["current_stream"]())
    with _cuda["stream"](side):
        fn(*arg_sets[0])  # kernels that allocate or autotune on first call must not do it in capture
    sync()
    graph = _cuda["CUDAGraph"]()
    results = []
    with _cuda["graph"](graph, stream=side):
        for args in arg_sets:
            results.append(fn(*args))
    samples = []
    stream = _cuda["current_stream"]()  # replay() launches on the current stream: time that one
    for _ in range(replays):
        start, stop = Event(enable_timing=True), Event(enable_timing=True)
        start.record(stream)
        graph.replay()
        stop.record(stream)
        sync()
        samples.append(_cuda["elapsed"](start, stop) / reps)
    for r, (args, result) in enumerate(zip(arg_sets, results)):
        finish(r % n_sets, result, args)
    return {"timer": "cuda_graph", "samples_ms": samples}


def median_iqr(samples: list[float]) -> tuple[float | None, float | None]:
    if not samples:
        return None, None
    if len(samples) < 4:
        return statistics.median(samples), max(samples) - min(samples)
    q = statistics.quantiles(samples, n=4, method="inclusive")
    return q[1], q[2] - q[0]
