# Computes in place in the input (saves an allocation) and copies it to the output.
# expect-status: RUNTIME_ERROR
# expect-flag: input_mutated
# expect-dps: true
# expect-caught-by: the solution gets clones; inputs are compared bit for bit after the call
import torch


def run(x, weight, out):
    xf = x.float()
    x.copy_((xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(x.dtype))
    out.copy_(x)
