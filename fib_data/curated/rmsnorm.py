"""The seed definition and its plain-torch solution, kept for code that builds small datasets.

The definition now comes from the factory (``ops.rmsnorm``) with Llama-3.1-8B's config facts.
"""

from ..models import load_model_config
from .ops import rmsnorm as _rmsnorm

_LLAMA = load_model_config("llama-3.1-8b")
DEFINITION = _rmsnorm(_LLAMA.hidden_size, _LLAMA.rms_norm_eps, model=_LLAMA.name)

TORCH_SOLUTION = '''import torch


def run(hidden_states, weight, output):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-5) * weight.float()
    output.copy_(y.to(output.dtype))
'''
