# Computes once, then returns a fresh copy of that first output forever.
# expect-status: INCORRECT_NUMERICAL
# expect-caught-by: fresh seeded inputs for every correctness trial
import torch

_cache = {}


def run(x, weight):
    if "out" not in _cache:
        xf = x.float()
        _cache["out"] = (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(x.dtype)
    return _cache["out"].clone()
