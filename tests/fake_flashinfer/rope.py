import math

import torch

from . import CALLS


def _inv_freq(dim, theta, scale, low, high, old):
    inv = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    wavelen = 2 * math.pi / inv
    smooth = (old / wavelen - low) / (high - low)
    scaled = torch.where(wavelen > old / low, inv / scale, inv)
    medium = (wavelen >= old / high) & (wavelen <= old / low)
    return torch.where(medium, (1 - smooth) * inv / scale + smooth * inv, scaled)


def apply_llama31_rope_pos_ids(q, k, pos_ids, rotary_dim=None, interleave=False, rope_scale=8,
                               rope_theta=5e5, low_freq_factor=1, high_freq_factor=4,
                               old_context_len=8192):
    CALLS["rope"] += 1
    inv = _inv_freq(q.shape[-1], rope_theta, rope_scale, low_freq_factor, high_freq_factor,
                    old_context_len)
    angles = pos_ids.float()[:, None] * inv[None, :]
    cos = torch.cat([angles.cos()] * 2, -1)[:, None, :]
    sin = torch.cat([angles.sin()] * 2, -1)[:, None, :]

    def rotate(x):
        x = x.float()
        half = x.shape[-1] // 2
        return (x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin)

    return rotate(q).to(q.dtype), rotate(k).to(k.dtype)
