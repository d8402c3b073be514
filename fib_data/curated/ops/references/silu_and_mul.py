import torch


@torch.no_grad()
def run(x):
    """SwiGLU activation: silu(x[:, :d]) * x[:, d:] in fp32, rounded to x's dtype (gate first)."""
    d = x.shape[-1] // 2
    gate, up = x[..., :d].float(), x[..., d:].float()
    return (torch.nn.functional.silu(gate) * up).to(x.dtype)
