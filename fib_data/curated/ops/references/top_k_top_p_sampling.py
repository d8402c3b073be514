import torch


def filtered_probs(probs, top_k, top_p):
    """The distribution actually sampled from: top-k first, renormalise, then top-p (nucleus).

    top_k <= 0 or >= vocab keeps every token; top-p keeps the smallest prefix of the sorted
    distribution whose mass reaches top_p (a token is kept while the mass before it is < top_p).
    This is flashinfer's top_k_top_p_sampling_from_probs with filter_apply_order="top_k_first".
    """
    probs = probs.float()
    vocab = probs.shape[-1]
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    ranks = torch.arange(vocab, device=probs.device)[None, :]
    k = top_k.long()[:, None]
    keep = (ranks < k) | (k <= 0) | (k >= vocab)
    kept = sorted_probs * keep
    kept = kept / kept.sum(dim=-1, keepdim=True)
    mass_before = kept.cumsum(dim=-1) - kept
    kept = kept * (mass_before < top_p.float()[:, None])
    kept = kept / kept.sum(dim=-1, keepdim=True)
    return torch.zeros_like(probs).scatter(1, order, kept)


@torch.no_grad()
def run(probs, top_k, top_p):
    """One token id per row, drawn from filtered_probs (int64)."""
    return torch.multinomial(filtered_probs(probs, top_k, top_p), 1).squeeze(1)


def prepare(inputs, axes):
    # Serving probabilities are a softmax of logits; a temperature of 1/3 on N(0,1) draws gives a
    # peaked distribution (a few hundred tokens hold most mass) so top-k and top-p both bite.
    inputs = dict(inputs)
    inputs["probs"] = torch.softmax(inputs["probs"].float() * 3.0, dim=-1)
    return inputs
