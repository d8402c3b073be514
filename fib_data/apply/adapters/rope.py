"""flashinfer.rope.apply_llama31_rope_pos_ids: the rope constants of the call must equal the
ones the definition bakes in (ROPE_THETA, ROPE_SCALE, ... in its reference)."""

from __future__ import annotations

from .base import Adapter


def _make(role, orig, site):
    memo, miss, call, busy = site.memo, site.miss, site.call, site.busy

    def apply_llama31_rope_pos_ids(q, k, pos_ids, rotary_dim=None, interleave=False,
                                   rope_scale=8, rope_theta=5e5, low_freq_factor=1,
                                   high_freq_factor=4, old_context_len=8192):
        consts = (rope_scale, rope_theta, low_freq_factor, high_freq_factor, old_context_len)
        if not busy[0] and not interleave:
            try:
                vals = (q, k, pos_ids)
                key = (q.shape, k.shape, pos_ids.shape, q.dtype, k.dtype, pos_ids.dtype,
                       q.get_device(), rotary_dim, consts)
                outs = None if rotary_dim not in (None, q.shape[-1]) else call(
                    memo.get(key) or miss(key, vals, params=dict(zip(_PARAMS, consts))), vals)
            except Exception:  # noqa: BLE001 - arguments no definition describes: original decides
                outs = None
            if outs is not None:
                return outs[0], outs[1]
        return orig(q, k, pos_ids, rotary_dim=rotary_dim, interleave=interleave,
                    rope_scale=rope_scale, rope_theta=rope_theta, low_freq_factor=low_freq_factor,
                    high_freq_factor=high_freq_factor, old_context_len=old_context_len)

    return apply_llama31_rope_pos_ids


_PARAMS = ("rope_scale", "rope_theta", "low_freq_factor", "high_freq_factor", "old_context_len")
ROPE_LLAMA31 = Adapter("apply_llama31_rope_pos_ids", ("rope_llama31_",),
                       {"fn": ("rope.apply_llama31_rope_pos_ids", "apply_llama31_rope_pos_ids")},
                       _make, slots=("q", "k", "pos_ids"), aliases={"positions": "pos_ids"})
