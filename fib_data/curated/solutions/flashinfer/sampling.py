"""flashinfer top-k then top-p sampling from probabilities (rejection sampling, no sort).

flashinfer returns int32 token ids; the definition's output is int64.
"""

import torch

import flashinfer


@torch.no_grad()
def top_k_top_p_sampling(probs, top_k, top_p):
    samples = flashinfer.sampling.top_k_top_p_sampling_from_probs(
        probs, top_k, top_p, filter_apply_order="top_k_first", deterministic=True)
    return samples.to(torch.int64)
