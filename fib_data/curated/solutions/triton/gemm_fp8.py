"""FP8 block-scaled GEMM in Triton (the DeepSeek-V3 W8A8 layout, as SGLang's w8a8_block_fp8_matmul).

C = (A * A_scale) @ (B * B_scale).T: each K step covers exactly one 128-wide scale block, so the
fp8 x fp8 tile product (fp32 accumulate on Hopper tensor cores) is scaled once per block by the
activation scale of its rows and the weight scale of its columns, then added in fp32.
"""

import os

import torch
import triton
import triton.language as tl

BLOCK = 128
#: The CPU interpreter has no fp8 dot: operands are widened to fp32 there (exact for e4m3).
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


@triton.jit
def _fp8_gemm_kernel(a_ptr, a_scale_ptr, b_ptr, b_scale_ptr, c_ptr, M, N, K,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                     UPCAST: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    k_blocks = K // BLOCK_K
    a_ptrs = a_ptr + rm[:, None].to(tl.int64) * K + rk[None, :]
    b_ptrs = b_ptr + rn[None, :].to(tl.int64) * K + rk[:, None]
    a_scales = a_scale_ptr + rm.to(tl.int64) * k_blocks
    b_scales = b_scale_ptr + (rn // BLOCK_K).to(tl.int64) * k_blocks
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kb in range(0, k_blocks):
        a = tl.load(a_ptrs, mask=rm[:, None] < M, other=0.0)
        b = tl.load(b_ptrs, mask=rn[None, :] < N, other=0.0)
        if UPCAST:
            a, b = a.to(tl.float32), b.to(tl.float32)
        a_s = tl.load(a_scales + kb, mask=rm < M, other=0.0)
        b_s = tl.load(b_scales + kb, mask=rn < N, other=0.0)
        acc += tl.dot(a, b) * a_s[:, None] * b_s[None, :]
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K
    c_ptrs = c_ptr + rm[:, None].to(tl.int64) * N + rn[None, :]
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=(rm[:, None] < M) & (rn[None, :] < N))


@torch.no_grad()
def gemm_fp8_block_scale(A, A_scale, B, B_scale, C):
    M, K = A.shape
    N = B.shape[0]
    if M == 0:
        return
    block_m = 16 if M <= 16 else 64
    extra = {} if INTERPRET else {"num_warps": 4, "num_stages": 3}
    grid = (triton.cdiv(M, block_m), triton.cdiv(N, 128))
    _fp8_gemm_kernel[grid](A.contiguous(), A_scale.contiguous(), B.contiguous(), B_scale.contiguous(), C,
                           M, N, K, BLOCK_M=block_m, BLOCK_N=128, BLOCK_K=BLOCK, UPCAST=INTERPRET, **extra)
