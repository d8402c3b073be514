# Monkeypatches the clocks (and the harness's own) at import so that every call looks instant.
# expect-status: RUNTIME_ERROR
# expect-flag: tampered
# expect-caught-by: clocks bound before solutions load; function identities snapshotted and compared after each evaluation; worker replaced
import sys
import time

import torch

_fake = [0]


def _tick_ns():
    _fake[0] += 1
    return _fake[0]


time.perf_counter_ns = _tick_ns
time.perf_counter = lambda: _tick_ns() / 1e9
timing = sys.modules.get("fib_data.executor.timing")
if timing is not None:
    timing._clock_ns = _tick_ns
if torch.cuda.is_available():
    torch.cuda.Event.elapsed_time = lambda self, other: 1e-6


def run(x, weight):
    xf = x.float()
    return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(x.dtype)
