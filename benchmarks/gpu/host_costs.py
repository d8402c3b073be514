"""Host time of the calls the timed loop makes, through torch and through the driver (ctypes).

Our executor is host-bound on small kernels: every timed call costs a flush, a latch, three
event records, a sync and two elapsed-time reads on the host. This prints microseconds per
call for each, both ways, so a change of path is judged on numbers from the machine itself.

    python benchmarks/gpu/host_costs.py [--n 2000]
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import time


def per_call_us(fn, n: int, sync, rounds: int = 5) -> float:
    """Median over rounds of the host time per call (the GPU drained between rounds)."""
    out = []
    for _ in range(rounds):
        sync()
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        out.append((time.perf_counter_ns() - t0) / n / 1e3)
    sync()
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--out")
    args = ap.parse_args()
    import torch

    from fib_data.executor import timing
    from fib_data.executor.cuda_driver import libcuda

    timing.capture_cuda()
    lib = libcuda()
    lib.cuMemsetD32Async.argtypes = [ctypes.c_uint64, ctypes.c_uint, ctypes.c_size_t, ctypes.c_void_p]
    lib.cuEventRecord.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.cuEventElapsedTime.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.cuCtxSynchronize.argtypes = []
    stream = torch.cuda.current_stream()
    handle = ctypes.c_void_p(stream.cuda_stream)
    small = torch.empty(1 << 18, dtype=torch.int32, device="cuda")  # 1 MB: host cost, not GPU time
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record(stream)
    b.record(stream)
    torch.cuda.synchronize()
    ms = ctypes.c_float()
    ea, eb = ctypes.c_void_p(a.cuda_event), ctypes.c_void_p(b.cuda_event)
    latch = timing.LatchHold()
    sync = torch.cuda.synchronize
    n = args.n
    rows = {
        "zero_ (torch)": per_call_us(lambda: small.zero_(), n, sync),
        "cuMemsetD32Async": per_call_us(lambda: lib.cuMemsetD32Async(small.data_ptr(), 0, small.numel(), handle), n, sync),
        "Event.record (torch)": per_call_us(lambda: a.record(stream), n, sync),
        "cuEventRecord": per_call_us(lambda: lib.cuEventRecord(ea, handle), n, sync),
        "synchronize, idle (torch)": per_call_us(sync, n, sync),
        "cuCtxSynchronize, idle": per_call_us(lambda: lib.cuCtxSynchronize(), n, sync),
        "elapsed_time (torch)": per_call_us(lambda: a.elapsed_time(b), n, sync),
        "cuEventElapsedTime": per_call_us(lambda: lib.cuEventElapsedTime(ctypes.byref(ms), ea, eb), n, sync),
        "latch arm+release": per_call_us(lambda: (latch.prearm(stream), latch.arm_for([], 0.0, stream), latch.release()), n, sync),
        "spin torch.cuda._sleep(1)": per_call_us(lambda: torch.cuda._sleep(1), n, sync),
        "full NaN 4096 bf16 (torch)": per_call_us(lambda: torch.full((1, 4096), float("nan"), dtype=torch.bfloat16,
                                                                     device="cuda"), n, sync),
        "empty 4096 bf16 (torch)": per_call_us(lambda: torch.empty((1, 4096), dtype=torch.bfloat16, device="cuda"),
                                               n, sync),
        "add 4096 bf16 (torch)": per_call_us(lambda: small.add_(1), n, sync),
        "current_stream (torch)": per_call_us(torch.cuda.current_stream, n, sync),
    }
    for name, us in rows.items():
        print(f"{name:32} {us:8.2f} us", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"n": n, "us_per_call": rows, "cpu_count": os.cpu_count()}, f, indent=1)


if __name__ == "__main__":
    main()
