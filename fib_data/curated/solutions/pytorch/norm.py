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


def _rmsnorm(hidden_states, weight):
    return _normalize(hidden_states, weight).to(hidden_states.dtype)


def _fused_add_rmsnorm(hidden_states, residual, weight):
    return _normalize(hidden_states.float() + residual.float(), weight).to(hidden_states.dtype)


@torch.no_grad()
def rmsnorm(hidden_states, weight):
    return _rmsnorm(hidden_states, weight)


@torch.no_grad()
def fused_add_rmsnorm(hidden_states, residual, weight):
    return _fused_add_rmsnorm(hidden_states, residual, weight)


_COMPILED = {}


@torch.no_grad()
def _compiled(fn, *args):
    # fn must be a plain function of this file, never a @torch.no_grad() wrapper: torch.compile
    # routes such wrappers through dynamo's one shared `inner` frame, so every solution loaded in
    # a worker adds guards to that frame and the 9th hits the recompile limit (fullgraph: error).
    if args[0].device.type == "cpu" and os.environ.get("FIB_COMPILE_CPU") != "1":
        return fn(*args)
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=True, fullgraph=True)
    return _COMPILED[fn](*args)


def rmsnorm_compiled(hidden_states, weight):
    return _compiled(_rmsnorm, hidden_states, weight)


def fused_add_rmsnorm_compiled(hidden_states, residual, weight):
    return _compiled(_fused_add_rmsnorm, hidden_states, residual, weight)
