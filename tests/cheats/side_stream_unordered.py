# Launches the work on a stream of its own, not ordered after the timed stream, then keeps the
# host busy so the hold before the start event lasts until the work is done (GPU). A hold that
# leaves the GPU free runs the work before the start event: neither the stream's events nor the
# device-wide end marker see it. On CPU there are no streams, so it is an honest solution there.
# expect-gpu-flag: wall_clock_gap
# expect-caught-by: the latch fills every SM while it holds, so the work runs after the start event; the device-wide end marker then counts it
import time

import torch

_side = []


def _compute(x, weight, out):
    xf = x.float()
    out.copy_((xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(out.dtype))


def run(x, weight):
    out = torch.empty_like(x)
    if not x.is_cuda:
        _compute(x, weight, out)
        return out
    if not _side:
        _side.append(torch.cuda.Stream())
    with torch.cuda.stream(_side[0]):  # no wait_stream: the pool's inputs are ready long before
        _compute(x, weight, out)
    end = time.perf_counter() + 1.2e-3  # longer than the work, inside the latch's 2 ms limit
    while time.perf_counter() < end:
        pass
    return out
