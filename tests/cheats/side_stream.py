# Does the work on a side stream and returns without syncing it to the timed stream (GPU).
# On CPU there are no streams, so it is an honest solution there.
# expect-gpu-flag: wall_clock_gap
# expect-caught-by: an end marker recorded after a device-wide synchronize; latency taken from it
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
    _side[0].wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(_side[0]):
        _compute(x, weight, out)
    return out
