"""SiLU-and-mul and Llama-3.1 RoPE in plain torch (fp32 math, one rounding to the input dtype).

``*_compiled`` entry points: torch.compile for CUDA inputs, eager on CPU unless
FIB_COMPILE_CPU=1 (same policy and reasons as norm.py).
"""

import math
import os

import torch

ROPE_THETA = 500000.0
ROPE_SCALE = 8.0
LOW_FREQ_FACTOR = 1.0
HIGH_FREQ_FACTOR = 4.0
OLD_CONTEXT_LEN = 8192


def _silu_and_mul(x):
    gate, up = x.float().chunk(2, dim=-1)
    return (torch.nn.functional.silu(gate) * up).to(x.dtype)


@torch.no_grad()
def silu_and_mul(x):
    return _silu_and_mul(x)


def llama31_inv_freq(rotary_dim, device):
    """Per-pair frequencies with the "llama3" rope_scaling bands (low: /factor, high: kept)."""
    inv_freq = ROPE_THETA ** (-torch.arange(0, rotary_dim, 2, device=device).float() / rotary_dim)
    wavelen = 2 * math.pi / inv_freq
    smooth = ((OLD_CONTEXT_LEN / wavelen - LOW_FREQ_FACTOR) / (HIGH_FREQ_FACTOR - LOW_FREQ_FACTOR)).clamp(0, 1)
    return (1 - smooth) * inv_freq / ROPE_SCALE + smooth * inv_freq


def _rope(q, k, pos_ids):
    freqs = pos_ids.float()[:, None] * llama31_inv_freq(q.shape[-1], q.device)[None, :]
    cos, sin = freqs.cos()[:, None, :], freqs.sin()[:, None, :]

    def rotate(x):
        x1, x2 = x.float().chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)

    return rotate(q), rotate(k)


@torch.no_grad()
def rope(q, k, pos_ids):
    return _rope(q, k, pos_ids)


_COMPILED = {}


@torch.no_grad()
def _compiled(fn, *args):
    # fn is a plain function of this file, never a @torch.no_grad() wrapper (see norm.py: those
    # share one dynamo frame across every solution in a worker and exhaust its recompile limit).
    if args[0].device.type == "cpu" and os.environ.get("FIB_COMPILE_CPU") != "1":
        return fn(*args)
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=True, fullgraph=True)
    return _COMPILED[fn](*args)


def silu_and_mul_compiled(x):
    return _compiled(_silu_and_mul, x)


def rope_compiled(q, k, pos_ids):
    return _compiled(_rope, q, k, pos_ids)
