"""GEMM definitions: bf16 projections (C = A @ B.T) and the FP8 block-scaled GEMM of DeepSeek-V3."""

from __future__ import annotations

from .common import BF16_ROUNDED_ONCE, const, definition, model_tags, reference, tensor, tolerance, var


def gemm(n: int, k: int, dtype: str = "bfloat16", *, model: str | None = None, tp: int = 1,
         layer: str = "", tags: list[str] | None = None) -> dict:
    where = f" Captured from {model} {layer}." if model else ""
    return definition(
        name=f"gemm_n{n}_k{k}", op_type="gemm", tags=tags or model_tags(model, "any", tp),
        description=f"General matrix multiply C = A @ B.T (a bias-free linear layer), {dtype}.{where}",
        axes=[var("M", "Tokens in the batch."), const("N", n, "Output features."),
              const("K", k, "Input features.")],
        inputs=[tensor("A", ["M", "K"], dtype, "Activations."),
                tensor("B", ["N", "K"], dtype, "Weight, row-major [out, in] as nn.Linear stores it.")],
        outputs=[tensor("C", ["M", "N"], dtype, "Result.")],
        reference=reference("gemm.py"), tolerances=[{**BF16_ROUNDED_ONCE, "dtype": dtype}])


def gemm_fp8_block_scale(n: int, k: int, *, model: str | None = None, tp: int = 1,
                         layer: str = "", tags: list[str] | None = None) -> dict:
    if n % 128 or k % 128:
        raise ValueError("FP8 block-scaled GEMM needs N and K divisible by 128")
    where = f" Captured from {model} {layer}." if model else ""
    return definition(
        name=f"gemm_fp8_block_scale_n{n}_k{k}", op_type="gemm_fp8_block_scale",
        tags=tags or model_tags(model, "any", tp, "quant:fp8_block128"),
        description=("C = (A * A_scale) @ (B * B_scale).T with FP8 e4m3 operands, activations "
                     "scaled per token per 128 K-columns and weights per 128x128 block (DeepSeek-V3 "
                     "quantization_config weight_block_size [128, 128]; the scale layout of DeepGEMM "
                     f"and flashinfer.gemm.fp8_blockscale_gemm_sm90), bf16 out.{where}"),
        axes=[var("M", "Tokens in the batch."), const("N", n, "Output features."),
              const("K", k, "Input features."), const("K_blocks", k // 128, "K / 128."),
              const("N_blocks", n // 128, "N / 128.")],
        inputs=[tensor("A", ["M", "K"], "float8_e4m3fn", "Quantised activations."),
                tensor("A_scale", ["M", "K_blocks"], "float32", "Activation scales, one per token per 128 K."),
                tensor("B", ["N", "K"], "float8_e4m3fn", "Quantised weight [out, in]."),
                tensor("B_scale", ["N_blocks", "K_blocks"], "float32", "Weight scales, one per 128x128 block.")],
        outputs=[tensor("C", ["M", "N"], "bfloat16", "Result.")],
        reference=reference("gemm_fp8_block_scale.py"),
        tolerances=[tolerance("bfloat16", 1.0, 2e-2,
                              "outputs have RMS ~150 (K=7168 e4m3 products, O(1) scales); Hopper FP8 "
                              "MMA accumulates each 128-K block with a short mantissa, so near-zero "
                              "outputs of correct kernels are off by up to ~0.1 (measured on an H100), "
                              "and bf16 rounding alone is 2 at |y| ~ 512")])
