"""flashinfer Llama-3.1 RoPE at given positions (cos/sin computed in the kernel), returns (q, k)."""

import torch

import flashinfer

ROPE_THETA = 500000.0
ROPE_SCALE = 8.0
LOW_FREQ_FACTOR = 1.0
HIGH_FREQ_FACTOR = 4.0
OLD_CONTEXT_LEN = 8192


@torch.no_grad()
def rope_llama31(q, k, pos_ids):
    return flashinfer.rope.apply_llama31_rope_pos_ids(
        q, k, pos_ids, interleave=False, rope_scale=ROPE_SCALE, rope_theta=ROPE_THETA,
        low_freq_factor=LOW_FREQ_FACTOR, high_freq_factor=HIGH_FREQ_FACTOR,
        old_context_len=OLD_CONTEXT_LEN)
