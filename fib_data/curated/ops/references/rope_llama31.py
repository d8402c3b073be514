import math

import torch

ROPE_THETA = 500000.0
ROPE_SCALE = 8.0
LOW_FREQ_FACTOR = 1.0
HIGH_FREQ_FACTOR = 4.0
OLD_CONTEXT_LEN = 8192


def _inv_freq(rotary_dim, device):
    """Llama-3.1 ("llama3" rope_scaling) frequencies, as in transformers' _compute_llama3_parameters."""
    inv_freq = 1.0 / ROPE_THETA ** (torch.arange(0, rotary_dim, 2, dtype=torch.float32, device=device) / rotary_dim)
    wavelen = 2 * math.pi / inv_freq
    low_freq_wavelen = OLD_CONTEXT_LEN / LOW_FREQ_FACTOR
    high_freq_wavelen = OLD_CONTEXT_LEN / HIGH_FREQ_FACTOR
    smooth = (OLD_CONTEXT_LEN / wavelen - LOW_FREQ_FACTOR) / (HIGH_FREQ_FACTOR - LOW_FREQ_FACTOR)
    smoothed = (1 - smooth) * inv_freq / ROPE_SCALE + smooth * inv_freq
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / ROPE_SCALE, inv_freq)
    is_medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return torch.where(is_medium, smoothed, scaled)


def _rotate(x, cos, sin):
    """NeoX / Hugging Face Llama layout: the two halves of the head dim form the pairs."""
    x = x.float()
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


@torch.no_grad()
def run(q, k, pos_ids):
    """Rotary embedding of q [tokens, heads, d] and k [tokens, kv_heads, d] at positions pos_ids."""
    inv_freq = _inv_freq(q.shape[-1], q.device)
    angles = pos_ids.float()[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)[:, None, :]
    cos, sin = angles.cos(), angles.sin()
    return _rotate(q, cos, sin).to(q.dtype), _rotate(k, cos, sin).to(k.dtype)
