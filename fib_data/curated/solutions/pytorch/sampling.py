"""Top-k then top-p sampling from probabilities in plain torch (sort once, mask, multinomial)."""

import torch


@torch.no_grad()
def top_k_top_p_sampling(probs, top_k, top_p):
    probs = probs.float()
    vocab = probs.shape[-1]
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    k = top_k.long().clamp(min=0)
    k = torch.where((k <= 0) | (k > vocab), torch.full_like(k, vocab), k)
    rank = torch.arange(vocab, device=probs.device)
    sorted_probs = sorted_probs.masked_fill(rank[None, :] >= k[:, None], 0.0)
    sorted_probs = sorted_probs / sorted_probs.sum(dim=-1, keepdim=True)
    # A token survives top-p while the mass strictly before it is below top_p.
    before = sorted_probs.cumsum(dim=-1) - sorted_probs
    sorted_probs = sorted_probs.masked_fill(before >= top_p.float()[:, None], 0.0)
    choice = torch.multinomial(sorted_probs, 1)
    return order.gather(1, choice).squeeze(1)
