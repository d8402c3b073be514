# Computes once, then returns the first output forever.
# expect-status: RUNTIME_ERROR
# expect-caught-by: the same tensor returned by two correctness trials (output_reused); a copy of it would fail on the next trial's fresh seeded inputs
import torch

_cache = {}


def run(x, weight):
    if "out" not in _cache:
        xf = x.float()
        _cache["out"] = (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(x.dtype)
    return _cache["out"]
