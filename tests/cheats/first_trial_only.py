# Correct on the first call only; afterwards it returns zeros (fast).
# expect-status: INCORRECT_NUMERICAL
# expect-caught-by: several correctness trials with fresh inputs
import torch

_calls = [0]


def run(x, weight):
    _calls[0] += 1
    if _calls[0] > 1:
        return torch.zeros_like(x)
    xf = x.float()
    return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(x.dtype)
