"""flashinfer FP8 block-scaled GEMM for Hopper (fp8_blockscale_gemm_sm90, DeepGEMM-style W8A8).

A [M, K] e4m3 with per-token-per-128-K scales; B [N, K] e4m3 with 128x128 block scales
[N/128, K/128]; bf16 C written into the caller's buffer. The kernel reads activation scales
through TMA in DeepGEMM's layout, M-contiguous ([K/128, M] with M padded to 4 floats = 16 bytes),
so the definition's [M, K/128] scales are transposed into that layout first (serving engines'
quantisation kernels write it directly). SM90 only: the function refuses other architectures.
"""

import torch

import flashinfer


@torch.no_grad()
def gemm_fp8_block_scale(A, A_scale, B, B_scale, C):
    M = A.shape[0]
    a_scale = torch.zeros(A_scale.shape[1], (M + 3) // 4 * 4, dtype=torch.float32, device=A.device)
    a_scale[:, :M] = A_scale.T
    flashinfer.gemm.fp8_blockscale_gemm_sm90(A, B, a_scale, B_scale, out=C, out_dtype=torch.bfloat16)
