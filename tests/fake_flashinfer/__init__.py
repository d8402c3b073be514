"""A CPU stand-in for flashinfer with the same call signatures as the entry points fib_data.apply
patches (flashinfer 0.7.2). Tests install it as ``sys.modules["flashinfer"]``. Each function
computes the real result with torch and counts its calls in ``CALLS``, so a test can tell
whether the original or a substitute ran."""

from collections import Counter

CALLS: Counter = Counter()

from . import activation, decode, gemm, mla, norm, prefill, rope, sampling  # noqa: E402
from .activation import silu_and_mul  # noqa: E402
from .decode import BatchDecodeWithPagedKVCacheWrapper  # noqa: E402
from .gemm import mm_bf16  # noqa: E402
from .mla import BatchMLAPagedAttentionWrapper  # noqa: E402
from .norm import fused_add_rmsnorm, rmsnorm  # noqa: E402
from .prefill import BatchPrefillWithPagedKVCacheWrapper, BatchPrefillWithRaggedKVCacheWrapper  # noqa: E402
from .rope import apply_llama31_rope_pos_ids  # noqa: E402
from .sampling import top_k_top_p_sampling_from_probs  # noqa: E402
