"""GEMMs in plain torch: bf16 C = A @ B.T (cuBLAS on GPU) and FP8 block-scaled via fp32 dequant."""

import torch

BLOCK = 128


@torch.no_grad()
def gemm(A, B):
    return torch.matmul(A, B.T)


@torch.no_grad()
def gemm_fp8_block_scale(A, A_scale, B, B_scale):
    """Dequantise both operands to fp32 (the scales broadcast over their 128-wide blocks)."""
    M, K = A.shape
    N = B.shape[0]
    a = (A.float().view(M, -1, BLOCK) * A_scale.float()[:, :, None]).view(M, K)
    b = B.float().view(N // BLOCK, BLOCK, K // BLOCK, BLOCK) * B_scale.float()[:, None, :, None]
    return torch.matmul(a, b.view(N, K).T).to(torch.bfloat16)
