"""Definition factories, one module per op family.

Each factory builds a complete ``definitions`` row (a dict matching ``fib_data/schema.py``) from
the const axes and model tags; names encode the const axes (``gqa_paged_decode_h32_kv8_d128_ps16``).
References are plain PyTorch kept as files under ``references/``; a factory fills in the
constants (eps, rope parameters, top-k) that cannot be read from tensor shapes.

Calling convention (same as flashinfer-trace): ``run(*inputs_in_definition_order)`` returns the
outputs; a reference may also define ``prepare(inputs, axes) -> inputs`` that turns freshly
drawn N(0, 1) tensors into valid ones (probabilities, positive scales, weight magnitudes).
"""

from .activation import silu_and_mul
from .attention import gqa_paged_decode, gqa_paged_prefill, gqa_ragged_prefill, mla_paged_decode
from .gemm import gemm, gemm_fp8_block_scale
from .moe import moe
from .norm import fused_add_rmsnorm, rmsnorm
from .rope import rope_llama31
from .sampling import top_k_top_p_sampling

__all__ = [
    "fused_add_rmsnorm", "gemm", "gemm_fp8_block_scale", "gqa_paged_decode", "gqa_paged_prefill",
    "gqa_ragged_prefill", "mla_paged_decode", "moe", "rmsnorm", "rope_llama31", "silu_and_mul",
    "top_k_top_p_sampling",
]
