"""RMSNorm over the hidden size of Llama-3.1-8B (hidden_size=4096, rms_norm_eps=1e-5)."""

REFERENCE = '''import torch


@torch.no_grad()
def run(hidden_states, weight):
    eps = 1e-5
    x = hidden_states.to(torch.float32)
    inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (x * inv_rms * weight.to(torch.float32)).to(hidden_states.dtype)
'''

DEFINITION = {
    "name": "rmsnorm_h4096",
    "op_type": "rmsnorm",
    "tags": ["model:llama-3.1-8b", "stage:any", "tp:1"],
    "description": "RMSNorm, y = x / sqrt(mean(x^2) + eps) * w, over hidden_size=4096 "
                   "(Llama-3.1-8B config: hidden_size 4096, rms_norm_eps 1e-5), fp32 accumulation.",
    "axes": [
        {"name": "batch_size", "type": "var", "value": None, "description": "Tokens in the batch."},
        {"name": "hidden_size", "type": "const", "value": 4096, "description": "Model width."},
    ],
    "inputs": [
        {"name": "hidden_states", "shape": ["batch_size", "hidden_size"], "dtype": "bfloat16",
         "description": None},
        {"name": "weight", "shape": ["hidden_size"], "dtype": "bfloat16", "description": None},
    ],
    "outputs": [
        {"name": "output", "shape": ["batch_size", "hidden_size"], "dtype": "bfloat16",
         "description": None},
    ],
    "reference": REFERENCE,
    "constraints": [],
    "tolerances": [{"dtype": "bfloat16", "atol": 1e-2, "rtol": 1e-2,
                    "reason": "one bf16 rounding of an fp32-accumulated result (2^-8 relative)"}],
}

TORCH_SOLUTION = '''import torch


def run(hidden_states, weight, output):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-5) * weight.float()
    output.copy_(y.to(output.dtype))
'''
