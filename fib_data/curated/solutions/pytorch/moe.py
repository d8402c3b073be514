"""Qwen3-style MoE block in plain torch: tokens grouped by expert, bf16 expert GEMMs."""

import torch

TOP_K = 8


@torch.no_grad()
def moe(hidden_states, routing_logits, gate_up_weights, down_weights):
    inter = down_weights.shape[-1]
    weights, experts = torch.softmax(routing_logits.float(), dim=-1).topk(TOP_K, dim=-1)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    flat = experts.flatten()
    order = flat.argsort()
    counts = torch.bincount(flat, minlength=gate_up_weights.shape[0]).tolist()
    token = order // TOP_K
    out = torch.zeros(hidden_states.shape, dtype=torch.float32, device=hidden_states.device)
    start = 0
    for e, n in enumerate(counts):
        if n == 0:
            continue
        rows = order[start:start + n]
        t = token[start:start + n]
        start += n
        h = hidden_states[t] @ gate_up_weights[e].T
        act = (torch.nn.functional.silu(h[:, :inter].float()) * h[:, inter:].float()).to(h.dtype)
        y = act @ down_weights[e].T
        out.index_add_(0, t, y.float() * weights.flatten()[rows, None])
    return out.to(hidden_states.dtype)
