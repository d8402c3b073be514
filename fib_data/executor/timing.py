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


def warm_up(call: Callable[[], Any], budget_ms: float, sync: Callable[[], None], min_calls: int = 3,
            max_calls: int = 1000, clock=_clock_ns) -> list[float]:
    """Call until ``budget_ms`` has passed; returns the host time each call took to return
    (before the sync), i.e. how long the host needs to enqueue one call."""
    start, host = now_ms(), []
    while len(host) < min_calls or (now_ms() - start < budget_ms and len(host) < max_calls):
        t0 = clock()
        call()
        host.append((clock() - t0) / 1e6)
        sync()
    return host


def median_ci_width(samples: list[float]) -> float:
    """Width of a distribution-free ~95% confidence interval of the median, relative to it.

    The interval runs between the order statistics at ranks n/2 -/+ 0.98 sqrt(n) (the binomial
    normal approximation); it needs no assumption about the shape of the timing distribution.
    """
    n = len(samples)
    if n < 3:
        return float("inf")
    ordered = sorted(samples)
    half = 0.98 * n ** 0.5
    lo, hi = max(int(n / 2 - half), 0), min(int(n / 2 + half + 0.999), n - 1)
    mid = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2  # the median; sorted once: this runs after every call
    return (ordered[hi] - ordered[lo]) / mid if mid > 0 else float("inf")


def stop_rule(min_reps: int, width: float) -> Callable[[list[float]], bool] | None:
    """Stop once ``min_reps`` calls are timed and the median's CI is narrower than ``width``
    (relative); ``width`` <= 0 keeps the fixed repetition count."""
    if width <= 0:
        return None
    return lambda samples: len(samples) >= min_reps and median_ci_width(samples) <= width


def measure_cpu(fn: Callable, prepare: Callable, finish: Callable, reps: int, n_sets: int,
                clock=_clock_ns, stop: Callable[[list[float]], bool] | None = None) -> dict:
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
        if stop is not None and stop(samples):
            break
    return {"timer": "wall_clock", "samples_ms": samples}


class L2Flush:
    """Writes a buffer larger than the L2 cache (2x its size, at least 64 MiB) before each timed call."""

    def __init__(self, device: str):
        import torch

        props = torch.cuda.get_device_properties(device)
        size = max(2 * int(getattr(props, "L2_cache_size", 50 << 20)), 64 << 20)
        self.buffer = torch.empty(size // 4, dtype=torch.int32, device=device)
        self.ms = self._duration()

    def _duration(self, reps: int = 5) -> float:
        """How long one flush keeps the GPU busy (the host enqueues the timed call meanwhile)."""
        Event, sync, took = _cuda["Event"], _cuda["synchronize"], []
        for _ in range(reps + 1):
            a, b = Event(enable_timing=True), Event(enable_timing=True)
            a.record()
            self()
            b.record()
            sync()
            took.append(_cuda["elapsed"](a, b))
        return statistics.median(took[1:])

    def __call__(self) -> None:
        self.buffer.zero_()


class Hold:
    """A GPU spin enqueued right before the start event, long enough for the host to enqueue
    the whole call behind it.

    Without it the start event fires as soon as the GPU is idle and the solution's Python-side
    launch latency is timed as if it were kernel time (the peer's numbers include it). With it the
    events bracket device work only, which is what CUPTI reports. ``torch.cuda._sleep`` counts
    clock cycles, so the cycles per millisecond are calibrated once with events.
    """

    MAX_MS = 2.0
    kind = "spin"

    def __init__(self):
        import torch

        self._sleep = torch.cuda._sleep
        Event, sync = _cuda["Event"], _cuda["synchronize"]
        self._sleep(10_000)  # first launch pays module loading
        sync()
        cycles, best = 1_000_000, None
        for _ in range(3):
            a, b = Event(enable_timing=True), Event(enable_timing=True)
            a.record()
            self._sleep(cycles)
            b.record()
            sync()
            ms = _cuda["elapsed"](a, b)
            best = ms if best is None else min(best, ms)
        self.cycles_per_ms = cycles / max(best, 1e-3)

    #: Spin = MARGIN x the 90th percentile of the recent enqueue times + SLACK_MS. A call the
    #: spin did not cover is measured, flagged and left out of the median (``verdict.py``), so
    #: the margin trades spin time on every call against calls lost. On H100s (220 evaluations,
    #: benchmarks/results/2026-11-23-session5) the median spin was 2.1x the median enqueue time
    #: with the former rule (1.5x the larger of all calls' 90th percentile and the last 3 calls'
    #: maximum, + 0.02 ms) and 1.6x with this one, which left 1.4-6% of timed calls uncovered.
    MARGIN, SLACK_MS, WINDOW = 1.2, 0.015, 32

    def cycles_for(self, host_ms: list[float], lead_ms: float = 0.0) -> tuple[int, float]:
        """Spin length covering the recent host enqueue times (the last ``WINDOW`` calls: timed
        calls can enqueue slower than warm-up calls, e.g. when kept outputs make the allocator ask
        the driver for memory), less ``lead_ms`` of GPU work queued before the spin (the L2 flush:
        the host enqueues the call while it runs too).
        Returns (cycles, ms the host has before the start event fires)."""
        if not host_ms:
            return 0, 0.0
        recent = sorted(host_ms[-self.WINDOW:])
        q = recent[int(0.9 * (len(recent) - 1))]
        ms = min(max(self.MARGIN * q + self.SLACK_MS - lead_ms, 0.02), self.MAX_MS)
        return int(ms * self.cycles_per_ms), ms + lead_ms

    def __call__(self, cycles: int) -> None:
        if cycles:
            self._sleep(cycles)

    def prearm(self, stream) -> None:
        """Nothing: the spin is sized at ``arm_for``; started earlier it would run out sooner."""

    def arm_for(self, host_ms: list[float], lead_ms: float, stream) -> float:
        """Enqueue the spin before the start event; returns the ms the host has to enqueue."""
        cycles, hold_ms = self.cycles_for(host_ms, lead_ms)
        self(cycles)
        return hold_ms

    def release(self) -> None:
        pass

    def covered(self, took_ms: float, hold_ms: float) -> bool:
        return took_ms < hold_ms


class LatchHold:
    """``latch.Latch`` behind the spin's interface: the stream waits for the host's release, so
    ``hold_ms`` is what the host took from arming to releasing (the most the GPU waited)."""

    kind = "latch"

    def __init__(self):
        from .latch import Latch

        self._latch = Latch(_cuda["current_stream"]().cuda_stream, _cuda["synchronize"])
        self._armed_ns = 0
        self.waited_ms = 0.0  # the last call's, from the latch holding the device to its release

    def prearm(self, stream) -> None:
        """Launch the latch right behind the flush: it fills the SMs while the host still keeps its
        books on the last call, and ``arm_for`` then rarely waits."""
        self._latch.launch(stream.cuda_stream)

    def arm_for(self, host_ms: list[float], lead_ms: float, stream) -> float:
        self._latch.wait_ready()
        self._armed_ns = _clock_ns()
        return 0.0

    def release(self) -> None:
        self._latch.release()
        self.waited_ms = (_clock_ns() - self._armed_ns) / 1e6

    def covered(self, took_ms: float, hold_ms: float) -> bool:
        return self._latch.covered()


def make_hold():
    """The latch where the driver loads it, else the calibrated spin (``FIB_HOLD=spin`` asks
    for the spin: same-machine comparisons in ``benchmarks/gpu``)."""
    import os

    if os.environ.get("FIB_HOLD") == "spin":
        return Hold()
    try:
        return LatchHold()
    except Exception:  # LatchError, or a driver without the symbols: the spin needs only torch
        return Hold()


def measure_cuda(fn: Callable, prepare: Callable, finish: Callable, reps: int, n_sets: int,
                 flush: Callable[[], None] | None, hold: Hold | None = None,
                 host_seen: list[float] = (), should_stop: Callable[[list[float]], bool] | None = None) -> dict:
    """CUDA events on the current stream around each call, plus a device-wide end marker.

    ``wide_ms`` ends at an event recorded after ``torch.cuda.synchronize()`` (all streams), so
    work hidden on a side stream shows up there even when the stream's own events miss it.
    ``hold`` (the latch, or a GPU spin sized from the host enqueue times seen so far: ``host_seen``
    from warm-up, then every timed call) runs after the flush and before the start event; ``held``
    marks the calls the host had fully enqueued before it ended. ``should_stop`` ends the loop
    early (see ``stop_rule``). Each call's arguments and flush are enqueued as soon as the previous
    call is done, so the GPU flushes while the host keeps its books.
    """
    Event, sync = _cuda["Event"], _cuda["synchronize"]
    stream = _cuda["current_stream"]()
    seen = list(host_seen)  # enqueue times: warm-up's, then each timed call's
    wides, held, holds, samples, waits, posts = [], [], [], [], [], []
    elapsed = _cuda["elapsed"]
    # Two sets of events, used in turn: a call's wide marker is read after the next call's sync.
    ring = [tuple(Event(enable_timing=True) for _ in range(3)) for _ in range(2)]
    last = None  # the previous call's (start, wide)
    args, flushed = _next_call(prepare, flush, 0, hold, stream)
    for r in range(reps):
        i = r % n_sets
        start, stop, wide = ring[r % 2]
        hold_ms = hold.arm_for(seen, _flush_left(flush, flushed), stream) if hold is not None else 0.0
        start.record(stream)
        t0 = _clock_ns()
        result = fn(*args)
        took = (_clock_ns() - t0) / 1e6
        stop.record(stream)
        if hold is not None:
            hold.release()  # after the stop event: the whole call is enqueued behind the latch
        t1 = _clock_ns()
        posts.append((t1 - t0) / 1e6 - took)
        sync()
        wide.record(stream)
        # For reviewing a wall_clock_gap: a busy host is slow both to reach the sync and to wake
        # from it, where work hidden from the stream only lengthens the wait.
        waits.append((_clock_ns() - t1) / 1e6)
        covered = hold is not None and hold.covered(took, hold_ms)  # before the next call re-arms it
        waited = getattr(hold, "waited_ms", hold_ms)
        done, more = args, r + 1 < reps
        if more:
            args, flushed = _next_call(prepare, flush, (r + 1) % n_sets, hold, stream)
        if last is not None:
            wides.append(elapsed(*last))
        last = start, wide
        finish(i, result, done)
        seen.append(took)
        holds.append(waited)
        held.append(covered)
        samples.append(elapsed(start, stop))  # both events are done: synchronized above
        if should_stop is not None and should_stop(samples):
            if more and hold is not None:
                hold.release()  # armed for a call that will not come
            break
    sync()
    if last is not None:
        wides.append(elapsed(*last))
    out = {"timer": "cuda_event",
           "samples_ms": samples,
           "wide_ms": wides,
           "sync_ms": waits,
           "post_ms": posts,
           "host_ms": seen[len(host_seen):]}
    if hold is not None:
        out.update(held=held, hold_ms=holds, hold=hold.kind)
    return out


def _next_call(prepare: Callable, flush: Callable[[], None] | None, i: int, hold=None,
               stream=None) -> tuple[Any, int]:
    """Set ``i``'s arguments (fresh output buffers first, so the flush evicts them too), then
    the flush, then the latch behind it (``hold.prearm``); returns them and when the flush was
    enqueued."""
    args = prepare(i)
    if flush is not None:
        flush()
    flushed = _clock_ns()
    if hold is not None:
        hold.prearm(stream)
    return args, flushed


def _flush_left(flush, flushed_ns: int) -> float:
    """How much of the flush is likely still running on the GPU (ms): the host enqueues the
    call behind the spin while it runs too. 80% of it, as its duration varies a little."""
    ms = getattr(flush, "ms", 0.0)
    return 0.8 * max(ms - (_clock_ns() - flushed_ns) / 1e6, 0.0) if ms else 0.0


def sync_overhead_ms(reps: int = 10) -> list[float]:
    """What the device-wide end marker adds for an empty call (host round trip); about 0.3 ms."""
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
