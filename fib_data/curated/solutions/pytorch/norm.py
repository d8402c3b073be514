"""RMSNorm and residual-add + RMSNorm in plain torch, fp32 math, one rounding to the output dtype.

The ``*_compiled`` entry points run the same functions through torch.compile (inductor) for CUDA
inputs, with a dynamic batch axis so one compile serves every batch size. CPU inputs run eagerly
unless FIB_COMPILE_CPU=1: inductor's CPU backend needs a C++ toolchain and tens of seconds per
graph, which CPU-only CI machines should not pay. Compile errors are raised, never hidden.
"""

import os

import torch

EPS = 1e-5


def _normalize(x, weight):
    x = x.float()
    return x * torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + EPS) * weight.float()


@torch.no_grad()
def rmsnorm(hidden_states, weight):
    return _normalize(hidden_states, weight).to(hidden_states.dtype)


@torch.no_grad()
def fused_add_rmsnorm(hidden_states, residual, weight):
    return _normalize(hidden_states.float() + residual.float(), weight).to(hidden_states.dtype)


_COMPILED = {}


def _compiled(fn, *args):
    if args[0].device.type == "cpu" and os.environ.get("FIB_COMPILE_CPU") != "1":
        return fn(*args)
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=True, fullgraph=True)
    return _COMPILED[fn](*args)


def rmsnorm_compiled(hidden_states, weight):
    return _compiled(rmsnorm, hidden_states, weight)


def fused_add_rmsnorm_compiled(hidden_states, residual, weight):
    return _compiled(fused_add_rmsnorm, hidden_states, residual, weight)
