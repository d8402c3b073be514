# Skips the work (leaves the output buffer alone) when the inputs equal the previous call's.
# expect-status: INCORRECT_NUMERICAL
# expect-flag: timed_output_mismatch
# expect-dps: true
# expect-caught-by: NaN-poisoned DPS outputs for every timed call, and every timed output is verified
import torch

_last = {}


def run(x, weight, out):
    if "x" in _last and _last["x"].shape == x.shape and torch.equal(_last["x"], x):
        return
    _last["x"] = x.clone()
    xf = x.float()
    out.copy_((xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(out.dtype))
