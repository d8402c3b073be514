"""Which baselines each definition kind gets: one ``Variant`` per (language, technique).

A definition's kind is the longest known prefix of its name (names encode the op family before
the const axes, e.g. ``gqa_paged_decode_h32_kv8_d128_ps16``); page size 1 decode has its own
signature (no ``kv_last_page_len``), hence its own kind.
"""

from __future__ import annotations

from .rows import Variant

_FI = ("torch", "flashinfer")
_TRITON = ("torch", "triton")
_GPU = ("cuda",)
_ROPE = ("ROPE_THETA", "ROPE_SCALE", "LOW_FREQ_FACTOR", "HIGH_FREQ_FACTOR", "OLD_CONTEXT_LEN")


def _torch(fn: str, file: str, what: str, constants: tuple[str, ...] = ()) -> Variant:
    return Variant("torch", "python", f"pytorch/{file}", fn, False, f"Plain torch: {what}",
                   constants=constants)


def _compiled(fn: str, file: str, constants: tuple[str, ...] = ()) -> Variant:
    return Variant("torch_compile", "python", f"pytorch/{file}", f"{fn}_compiled", False,
                   "torch.compile (inductor, dynamic batch) of the plain torch version; eager on "
                   "CPU unless FIB_COMPILE_CPU=1", constants=constants)


def _flashinfer(fn: str, file: str, what: str, constants: tuple[str, ...] = (),
                dps: bool = True) -> Variant:
    return Variant("flashinfer", "python", f"flashinfer/{file}", fn, dps, f"flashinfer {what}",
                   dependencies=_FI, constants=constants, hardware=_GPU)


def _triton(fn: str, file: str, what: str, constants: tuple[str, ...] = ()) -> Variant:
    return Variant("triton", "triton", f"triton/{file}", fn, True, f"Triton: {what}",
                   dependencies=_TRITON, constants=constants, hardware=_GPU)


def _cuda(file: str, what: str, constants: tuple[str, ...] = ()) -> Variant:
    return Variant("cuda", "cuda", f"cuda/{file}", "run", True, f"CUDA (torch binding): {what}",
                   constants=constants, hardware=_GPU)


_ATTN_TORCH = "gathers pages into a padded batch, fp32 grouped-head einsum, masked softmax"
_PREFILL_TORCH = "per-sequence fp32 grouped-head matmuls with a bottom-right causal mask"

VARIANTS: dict[str, list[Variant]] = {
    "gqa_paged_decode_ps1": [
        _torch("gqa_paged_decode_ps1", "attention.py", _ATTN_TORCH),
        _flashinfer("gqa_paged_decode_ps1", "attention.py",
                    "BatchDecodeWithPagedKVCacheWrapper, planned once per batch layout"),
        _triton("gqa_paged_decode_ps1", "decode.py",
                "one program per (sequence, kv head) covering its query group, online softmax"),
    ],
    "gqa_paged_decode": [
        _torch("gqa_paged_decode", "attention.py", _ATTN_TORCH),
        _flashinfer("gqa_paged_decode", "attention.py",
                    "BatchDecodeWithPagedKVCacheWrapper, planned once per batch layout"),
        _triton("gqa_paged_decode", "decode.py",
                "one program per (sequence, kv head) covering its query group, online softmax"),
    ],
    "gqa_paged_prefill_causal": [
        _torch("gqa_paged_prefill", "attention.py", _PREFILL_TORCH),
        _flashinfer("gqa_paged_prefill", "attention.py",
                    "BatchPrefillWithPagedKVCacheWrapper (causal), planned once per batch layout"),
    ],
    "gqa_ragged_prefill_causal": [
        _torch("gqa_ragged_prefill", "attention.py", _PREFILL_TORCH),
        _flashinfer("gqa_ragged_prefill", "attention.py",
                    "BatchPrefillWithRaggedKVCacheWrapper (causal), planned once per batch layout"),
    ],
    "mla_paged_decode": [
        _torch("mla_paged_decode", "attention.py", "absorbed MLA as one shared latent head, " + _ATTN_TORCH),
        _flashinfer("mla_paged_decode", "attention.py",
                    "BatchMLAPagedAttentionWrapper, planned once per batch layout"),
    ],
    "gemm_fp8_block_scale": [
        _torch("gemm_fp8_block_scale", "gemm.py", "dequantise to fp32, fp32 matmul", ("BLOCK",)),
        _flashinfer("gemm_fp8_block_scale", "gemm.py",
                    "fp8_blockscale_gemm_sm90 (DeepGEMM-style W8A8, Hopper only)", dps=True),
        _triton("gemm_fp8_block_scale", "gemm_fp8.py",
                "fp8 tile dots, one 128-wide scale block per K step, fp32 accumulate", ("BLOCK",)),
    ],
    "gemm": [
        _torch("gemm", "gemm.py", "torch.matmul(A, B.T) (cuBLAS on GPU)"),
        _triton("gemm", "gemm.py", "tiled C = A @ B.T, fp32 accumulators, grouped tile order"),
    ],
    "rmsnorm": [
        _torch("rmsnorm", "norm.py", "fp32 math, one rounding", ("EPS",)),
        _compiled("rmsnorm", "norm.py", ("EPS",)),
        _flashinfer("rmsnorm", "norm.py", "norm.rmsnorm", ("EPS",)),
        _triton("rmsnorm", "norm.py", "one program per row, fp32 reduction", ("EPS",)),
        _cuda("rmsnorm.cu", "one block per row, 16-byte bf16x8 loads, fp32 warp-shuffle reduction",
              ("EPS",)),
    ],
    "fused_add_rmsnorm": [
        _torch("fused_add_rmsnorm", "norm.py", "fp32 sum and norm, one rounding", ("EPS",)),
        _compiled("fused_add_rmsnorm", "norm.py", ("EPS",)),
        _flashinfer("fused_add_rmsnorm", "norm.py",
                    "norm.fused_add_rmsnorm on copies (it works in place on its inputs)", ("EPS",)),
        _triton("fused_add_rmsnorm", "norm.py", "one program per row, fp32 sum and reduction", ("EPS",)),
    ],
    "silu_and_mul": [
        _torch("silu_and_mul", "elementwise.py", "fp32 math, one rounding"),
        _compiled("silu_and_mul", "elementwise.py"),
        _flashinfer("silu_and_mul", "activation.py", "activation.silu_and_mul"),
        _triton("silu_and_mul", "elementwise.py", "2D tiles, fp32 math"),
        _cuda("silu_and_mul.cu", "grid-stride over bf16x8 vectors, 16-byte loads and stores, fp32 math"),
    ],
    "rope_llama31": [
        _torch("rope", "elementwise.py", "llama3-scaled frequencies, cos/sin in fp32", _ROPE),
        _compiled("rope", "elementwise.py", _ROPE),
        _flashinfer("rope_llama31", "rope.py", "rope.apply_llama31_rope_pos_ids", _ROPE, dps=False),
        _triton("rope", "elementwise.py", "one program per token, heads x half-dim tile", _ROPE),
    ],
    "top_k_top_p_sampling_from_probs": [
        _torch("top_k_top_p_sampling", "sampling.py", "sort once, top-k and top-p masks, multinomial"),
        _flashinfer("top_k_top_p_sampling", "sampling.py",
                    "sampling.top_k_top_p_sampling_from_probs (rejection sampling)", dps=False),
    ],
    "moe": [
        _torch("moe", "moe.py", "tokens grouped by expert, bf16 expert GEMMs", ("TOP_K",)),
        _flashinfer("moe", "moe.py", "fused_moe.cutlass_fused_moe (bf16) after torch routing",
                    ("TOP_K",)),
    ],
}


def kind_of(definition: dict) -> str | None:
    name = definition["name"]
    if name.startswith("gqa_paged_decode_") and name.endswith("_ps1"):
        return "gqa_paged_decode_ps1"
    matches = [k for k in VARIANTS if name.startswith(k + "_")]
    return max(matches, key=len) if matches else None
