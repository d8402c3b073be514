"""SiLU-and-mul and Llama-3.1 RoPE in Triton, fp32 math, one rounding to the output dtype."""

import math

import torch
import triton
import triton.language as tl

ROPE_THETA = 500000.0
ROPE_SCALE = 8.0
LOW_FREQ_FACTOR = 1.0
HIGH_FREQ_FACTOR = 4.0
OLD_CONTEXT_LEN = 8192


@triton.jit
def _silu_and_mul_kernel(x_ptr, out_ptr, hidden, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < hidden
    gate = tl.load(x_ptr + row * 2 * hidden + cols, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(x_ptr + row * 2 * hidden + hidden + cols, mask=mask, other=0.0).to(tl.float32)
    out = gate / (1.0 + tl.exp(-gate)) * up
    tl.store(out_ptr + row * hidden + cols, out.to(out_ptr.dtype.element_ty), mask=mask)


@torch.no_grad()
def silu_and_mul(x, output):
    rows, hidden = output.shape
    if rows == 0:
        return
    block = 1024
    _silu_and_mul_kernel[(rows, triton.cdiv(hidden, block))](x.contiguous(), output, hidden, BLOCK=block)


@triton.jit
def _rope_kernel(x_ptr, out_ptr, pos_ptr, freq_ptr, heads, HALF: tl.constexpr, BLOCK_H: tl.constexpr):
    """One token: rotate the pairs (i, i + HALF) of every head by pos * freq[i]."""
    token = tl.program_id(0).to(tl.int64)
    h = tl.arange(0, BLOCK_H)[:, None]
    i = tl.arange(0, HALF)[None, :]
    mask = h < heads
    angle = tl.load(pos_ptr + token).to(tl.float32) * tl.load(freq_ptr + i)
    # Angles reach ~1e5 rad; reduce to [-pi, pi] first (Cody-Waite: 2*pi = 6.28125 + tail, the
    # first product exact in fp32) so a fast sin/cos stays accurate.
    turns = tl.floor(angle * 0.15915494309189535 + 0.5)
    angle = (angle - turns * 6.28125) - turns * 0.0019353071795864769
    cos, sin = tl.cos(angle), tl.sin(angle)
    base = token * heads * 2 * HALF + h * 2 * HALF + i
    x1 = tl.load(x_ptr + base, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(x_ptr + base + HALF, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + base, (x1 * cos - x2 * sin).to(out_ptr.dtype.element_ty), mask=mask)
    tl.store(out_ptr + base + HALF, (x2 * cos + x1 * sin).to(out_ptr.dtype.element_ty), mask=mask)


_FREQS = {}


def _inv_freq(rotary_dim, device):
    """Llama-3.1 ("llama3" rope_scaling) frequencies, computed once per device in fp32."""
    key = (rotary_dim, str(device))
    if key not in _FREQS:
        inv_freq = ROPE_THETA ** (-torch.arange(0, rotary_dim, 2, device=device).float() / rotary_dim)
        wavelen = 2 * math.pi / inv_freq
        smooth = ((OLD_CONTEXT_LEN / wavelen - LOW_FREQ_FACTOR)
                  / (HIGH_FREQ_FACTOR - LOW_FREQ_FACTOR)).clamp(0, 1)
        _FREQS[key] = ((1 - smooth) * inv_freq / ROPE_SCALE + smooth * inv_freq).contiguous()
    return _FREQS[key]


@torch.no_grad()
def rope(q, k, pos_ids, q_rope, k_rope):
    tokens, _, head_dim = q.shape
    if tokens == 0:
        return
    freqs = _inv_freq(head_dim, q.device)
    for x, out in ((q.contiguous(), q_rope), (k.contiguous(), k_rope)):
        heads = x.shape[1]
        _rope_kernel[(tokens,)](x, out, pos_ids, freqs, heads, HALF=head_dim // 2,
                                BLOCK_H=triton.next_power_of_2(heads))
