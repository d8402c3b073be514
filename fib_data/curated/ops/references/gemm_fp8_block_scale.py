import torch

#: Scale granularity: activations per token and 128-wide K block, weights per 128x128 block.
BLOCK = 128


@torch.no_grad()
def run(A, A_scale, B, B_scale):
    """C = dequant(A) @ dequant(B).T in fp32, rounded to bf16 (DeepSeek-V3 / DeepGEMM layout).

    A: [M, K] fp8 e4m3 with A_scale [M, K/128] (one scale per token per 128 K-columns);
    B: [N, K] fp8 e4m3 with B_scale [N/128, K/128] (one scale per 128x128 weight block).
    """
    M, K = A.shape
    N = B.shape[0]
    a = A.float() * A_scale.float().repeat_interleave(BLOCK, dim=1)[:, :K]
    b_scale = B_scale.float().repeat_interleave(BLOCK, dim=0).repeat_interleave(BLOCK, dim=1)
    b = B.float() * b_scale[:N, :K]
    return (a @ b.T).to(torch.bfloat16)


def prepare(inputs, axes):
    # Real scales are positive and near amax/448; |N(0,1)| + 0.5 keeps them positive and O(1).
    inputs = dict(inputs)
    for name in ("A_scale", "B_scale"):
        inputs[name] = inputs[name].abs() + 0.5
    return inputs
