"""flashinfer.sampling.top_k_top_p_sampling_from_probs (top-k first). Scalar top_k/top_p are
expanded to the per-row tensors the definition takes. Calls that pin randomness (generator,
seed, offset) or ask for more than the samples keep the original."""

from __future__ import annotations

from .base import Adapter


def _make(role, orig, site):
    import torch

    memo, miss, call, busy = site.memo, site.miss, site.call, site.busy

    def top_k_top_p_sampling_from_probs(probs, top_k, top_p, indices=None,
                                        filter_apply_order="top_k_first", deterministic=True,
                                        generator=None, check_nan=False, seed=None, offset=None,
                                        return_valid=False):
        plain = (indices is None and generator is None and seed is None and offset is None
                 and not return_valid and filter_apply_order == "top_k_first")
        if plain and not busy[0]:
            try:
                rows = probs.shape[0]
                k = top_k if hasattr(top_k, "shape") else probs.new_full((rows,), int(top_k), dtype=torch.int32)
                p = top_p if hasattr(top_p, "shape") else probs.new_full((rows,), float(top_p))
                vals = (probs, k, p)
                key = (probs.shape, k.shape, p.shape, probs.dtype, k.dtype, p.dtype, probs.get_device())
                outs = call(memo.get(key) or miss(key, vals), vals)
            except Exception:  # noqa: BLE001 - arguments no definition describes: original decides
                outs = None
            if outs is not None:
                return outs[0]
        return orig(probs, top_k, top_p, indices=indices, filter_apply_order=filter_apply_order,
                    deterministic=deterministic, generator=generator, check_nan=check_nan,
                    seed=seed, offset=offset, return_valid=return_valid)

    return top_k_top_p_sampling_from_probs


TOP_K_TOP_P = Adapter("top_k_top_p_sampling_from_probs", ("top_k_top_p_sampling_from_probs_",),
                      {"fn": ("sampling.top_k_top_p_sampling_from_probs",
                              "top_k_top_p_sampling_from_probs")},
                      _make, slots=("probs", "top_k", "top_p"))
