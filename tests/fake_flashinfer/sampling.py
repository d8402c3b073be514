import torch

from . import CALLS


def top_k_top_p_sampling_from_probs(probs, top_k, top_p, indices=None,
                                    filter_apply_order="top_k_first", deterministic=True,
                                    generator=None, check_nan=False, seed=None, offset=None,
                                    return_valid=False):
    CALLS["sampling"] += 1
    k = top_k if torch.is_tensor(top_k) else torch.full((probs.shape[0],), top_k)
    kept = probs.clone()
    for row in range(probs.shape[0]):
        cut = probs[row].sort(descending=True).values[int(k[row]) - 1]
        kept[row][probs[row] < cut] = 0
    return torch.multinomial(kept / kept.sum(-1, keepdim=True), 1, generator=generator).squeeze(1)
