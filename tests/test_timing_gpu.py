"""The GPU timer brackets device work only: host launch latency stays out, kernel time stays in.

A call that spends ~300 us on the host before launching a short kernel is timed with and without
the hold; a profiler (CUPTI) span of the same kernel is the yardstick.
"""

import statistics
import time

import pytest

pytestmark = pytest.mark.gpu


def _busy_then_kernel(x):
    end = time.perf_counter() + 300e-6  # host-side work a Python wrapper might do
    while time.perf_counter() < end:
        pass
    return x.mul_(1.0001)


def _measure(hold: bool, x):
    from fib_data.executor import timing

    timing.capture_cuda()
    import torch

    call = lambda: _busy_then_kernel(x)  # noqa: E731
    host = timing.warm_up(call, 20.0, torch.cuda.synchronize)
    out = timing.measure_cuda(lambda: call(), lambda i: [], lambda i, r, a: None, 30, 1,
                              timing.L2Flush("cuda:0"), timing.Hold() if hold else None, host)
    if hold:
        assert sum(out["held"]) >= 25  # the spin outlasted the host's enqueue on nearly every call
    return statistics.median(out["samples_ms"]), statistics.median(out["host_ms"])


def _kernel_ms(x) -> float:
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            x.mul_(1.0001)
            torch.cuda.synchronize()
    spans = [e.time_range.end - e.time_range.start for e in prof.events()
             if e.device_type.name == "CUDA" and "mul" in e.name.lower()]
    return statistics.median(spans) / 1e3


def test_hold_keeps_host_latency_out_and_kernel_time_in():
    import torch

    x = torch.ones(32 << 20, device="cuda:0")  # 128 MB, beyond L2: ~85 us on an H100, cold either way
    kernel = _kernel_ms(x)
    held, host = _measure(True, x)
    bare, _ = _measure(False, x)
    assert host > 0.25  # the host really did spend its 300 us
    assert bare > 0.25  # without the hold, the host's time is inside the interval
    assert held < kernel * 1.5 + 0.01, (held, kernel)
    assert held > kernel * 0.8, (held, kernel)
