"""flashinfer RMSNorm and fused residual-add + RMSNorm (DPS).

flashinfer.norm.fused_add_rmsnorm works in place: it adds ``input`` into ``residual`` and
overwrites ``input`` with the normalised sum. The definition's inputs must stay untouched, so the
wrapper normalises a copy written straight into ``output`` and adds into a scratch copy of the
residual: two extra copies of the activations (the price of the in-place API in a pure function).
"""

import torch

import flashinfer

EPS = 1e-5


@torch.no_grad()
def rmsnorm(hidden_states, weight, output):
    flashinfer.norm.rmsnorm(hidden_states, weight, eps=EPS, out=output)


@torch.no_grad()
def fused_add_rmsnorm(hidden_states, residual, weight, output):
    output.copy_(hidden_states)
    flashinfer.norm.fused_add_rmsnorm(output, residual.clone(), weight, eps=EPS)
