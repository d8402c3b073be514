"""Why does an honest torch.compile solution show a device-wide gap (``wall_clock_gap``)?

    python benchmarks/gpu/probe_wide_gap.py        # on the GPU machine; prints one line per case

Runs the timing loop of ``executor/timing.measure_cuda`` by hand (flush, latch, start, call, stop,
release, sync, wide) for several callables and prints, per case, the median of the stream
interval (stop - start), of the wide tail (wide - stop) and the host enqueue time. The cases
separate the suspects: the compiled graph itself, a long host enqueue with eager kernels (a
longer hold), and no hold at all. With $OUT set, a torch.profiler trace of the compiled case is
written there.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import torch

from fib_data.executor import timing
from fib_data.curated.solutions.pytorch import elementwise as E


def _busy(us: float) -> None:
    end = time.perf_counter_ns() + us * 1e3
    while time.perf_counter_ns() < end:
        pass


def run_case(fn, x, hold, flush, reps=60):
    Event, stream = torch.cuda.Event, torch.cuda.current_stream()
    start, stop, wide = (Event(enable_timing=True) for _ in range(3))
    inner, tail, host = [], [], []
    for _ in range(reps):
        flush()
        if hold is not None:
            hold.prearm(stream)
            hold.arm_for([], 0.0, stream)
        start.record(stream)
        t0 = time.perf_counter_ns()
        fn(x)
        host.append((time.perf_counter_ns() - t0) / 1e3)
        stop.record(stream)
        if hold is not None:
            hold.release()
        torch.cuda.synchronize()
        wide.record(stream)
        torch.cuda.synchronize()
        inner.append(start.elapsed_time(stop) * 1e3)
        tail.append(stop.elapsed_time(wide) * 1e3)
    med = statistics.median
    return {"stream_us": med(inner), "tail_us": med(tail), "host_us": med(host)}


def main() -> int:
    timing.capture_cuda()
    flush = timing.L2Flush("cuda:0")
    latch = timing.LatchHold()
    dynamic = torch.compile(E._silu_and_mul, dynamic=True, fullgraph=True)
    static = torch.compile(E._silu_and_mul, dynamic=False, fullgraph=True)

    def slow_eager(x):
        _busy(250)
        return E._silu_and_mul(x)

    def eager_then_slow(x):
        out = E._silu_and_mul(x)
        _busy(250)
        return out

    cases = {"eager": E._silu_and_mul, "eager_host250us_before": slow_eager,
             "eager_host250us_after": eager_then_slow, "compiled_dynamic": dynamic, "compiled_static": static}
    results = []
    for batch in (8, 128, 2048):
        x = torch.randn(batch, 2 * 3584, device="cuda", dtype=torch.bfloat16)
        for fn in (dynamic, static):
            for _ in range(5):
                fn(x)
        torch.cuda.synchronize()
        for name, fn in cases.items():
            for hold_name, hold in (("latch", latch), ("none", None)):
                r = run_case(fn, x, hold, flush)
                r.update(case=name, hold=hold_name, batch=batch)
                results.append(r)
                print(json.dumps(r), flush=True)
    empty = run_case(lambda x: None, x, latch, flush)
    print(json.dumps(dict(empty, case="empty", hold="latch")), flush=True)
    out = os.environ.get("OUT")
    if out:
        x = torch.randn(8, 2 * 3584, device="cuda", dtype=torch.bfloat16)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                torch.profiler.ProfilerActivity.CUDA]) as prof:
            run_case(dynamic, x, latch, flush, reps=5)
        prof.export_chrome_trace(os.path.join(out, "wide_gap_trace.json"))
        with open(os.path.join(out, "wide_gap.json"), "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
