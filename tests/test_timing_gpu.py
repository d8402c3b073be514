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


def _measure(hold, x, call=None):
    """Median timed and host ms of 30 calls, and which were held; ``hold`` None, "spin" or "latch"."""
    from fib_data.executor import timing

    timing.capture_cuda()
    import torch

    call = call or (lambda: _busy_then_kernel(x))
    host = timing.warm_up(call, 20.0, torch.cuda.synchronize)
    holder = {None: lambda: None, "spin": timing.Hold, "latch": timing.LatchHold}[hold]()
    out = timing.measure_cuda(lambda: call(), lambda i: [], lambda i, r, a: None, 30, 1,
                              timing.L2Flush("cuda:0"), holder, host)
    if hold == "spin":
        assert sum(out["held"]) >= 25  # the spin outlasted the host's enqueue on nearly every call
    return statistics.median(out["samples_ms"]), statistics.median(out["host_ms"]), out.get("held")


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
    bare, _, _ = _measure(None, x)
    assert bare > 0.25  # without the hold, the host's time is inside the interval
    for kind in ("spin", "latch"):
        held, host, _ = _measure(kind, x)
        assert host > 0.25  # the host really did spend its 300 us
        assert held < kernel * 1.5 + 0.01, (kind, held, kernel)
        assert held > kernel * 0.8, (kind, held, kernel)


def test_latch_holds_every_call_and_lets_a_syncing_call_through():
    import torch

    from fib_data.executor import timing

    x = torch.ones(32 << 20, device="cuda:0")
    *_, held = _measure("latch", x)
    assert all(held)  # released by the host after each whole call, never by the time limit

    def syncs():  # waits on its own stream: only the latch's time limit lets it finish
        x.mul_(1.0001)
        torch.cuda.synchronize()
        return x

    started = time.perf_counter()
    *_, held = _measure("latch", x, call=syncs)
    assert not any(held)
    assert time.perf_counter() - started < 5.0
    assert isinstance(timing.make_hold(), timing.LatchHold)
