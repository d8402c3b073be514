"""One adapter per flashinfer entry point; ``default_adapters()`` is what ``apply()`` installs."""

from __future__ import annotations

from .base import Adapter


def default_adapters() -> list[Adapter]:
    from .activation import SILU_AND_MUL
    from .decode import DECODE
    from .gemm import MM_BF16
    from .mla import MLA_DECODE
    from .norm import FUSED_ADD_RMSNORM, RMSNORM
    from .prefill import PAGED_PREFILL, RAGGED_PREFILL
    from .rope import ROPE_LLAMA31
    from .sampling import TOP_K_TOP_P

    return [DECODE, PAGED_PREFILL, RAGGED_PREFILL, MLA_DECODE, RMSNORM, FUSED_ADD_RMSNORM,
            SILU_AND_MUL, ROPE_LLAMA31, TOP_K_TOP_P, MM_BF16]


__all__ = ["Adapter", "default_adapters"]
