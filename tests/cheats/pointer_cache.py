# Caches outputs by input data pointer (the C++ "static map keyed by data_ptr" trick).
# expect-status: RUNTIME_ERROR
# expect-flag: output_reused
# expect-caught-by: timed calls rotate input sets and every timed output is kept and checked; the same tensor returned twice is output_reused
import torch

_cache = {}


def run(x, weight):
    key = (x.data_ptr(), weight.data_ptr())
    if key not in _cache:
        xf = x.float()
        _cache[key] = (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(x.dtype)
    return _cache[key]
