"""flashinfer SiLU-and-mul (DPS): silu(x[:, :h]) * x[:, h:] written into ``output``."""

import torch

import flashinfer


@torch.no_grad()
def silu_and_mul(x, output):
    flashinfer.activation.silu_and_mul(x, out=output)
