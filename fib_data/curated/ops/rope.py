"""Rotary position embedding with Llama-3.1 frequency scaling, positions given per token."""

from __future__ import annotations

from .common import const, definition, model_tags, reference, tensor, tolerance, var


def rope_llama31(num_qo_heads: int, num_kv_heads: int, head_dim: int, rope_theta: float,
                 rope_scaling: dict, *, model: str | None = None, tp: int = 1,
                 tags: list[str] | None = None) -> dict:
    """Llama-3.1 RoPE (rope_type "llama3" scaling is part of the definition; NeoX half layout)."""
    if (rope_scaling or {}).get("rope_type") != "llama3":
        raise ValueError("rope_llama31 needs a rope_scaling block with rope_type 'llama3'")
    consts = dict(ROPE_THETA=float(rope_theta), ROPE_SCALE=float(rope_scaling["factor"]),
                  LOW_FREQ_FACTOR=float(rope_scaling["low_freq_factor"]),
                  HIGH_FREQ_FACTOR=float(rope_scaling["high_freq_factor"]),
                  OLD_CONTEXT_LEN=int(rope_scaling["original_max_position_embeddings"]))
    where = f" Shapes from {model}." if model else ""
    return definition(
        name=f"rope_llama31_h{num_qo_heads}_kv{num_kv_heads}_d{head_dim}", op_type="rope",
        tags=tags or model_tags(model, "any", tp),
        description=(f"Rotary embedding of q and k at the given positions, rotary_dim = head_dim, "
                     f"non-interleaved (Hugging Face rotate_half) layout, rope_theta {rope_theta:g} "
                     f"with Llama-3.1 rope_scaling (factor {consts['ROPE_SCALE']:g}, low/high freq "
                     f"factor {consts['LOW_FREQ_FACTOR']:g}/{consts['HIGH_FREQ_FACTOR']:g}, "
                     f"original context {consts['OLD_CONTEXT_LEN']}), as "
                     f"flashinfer.rope.apply_llama31_rope_pos_ids.{where}"),
        axes=[var("num_tokens", "Tokens in the batch."),
              const("num_qo_heads", num_qo_heads, "Query heads on one rank."),
              const("num_kv_heads", num_kv_heads, "Key heads on one rank."),
              const("head_dim", head_dim, "Head dimension (all of it rotated).")],
        inputs=[tensor("q", ["num_tokens", "num_qo_heads", "head_dim"], "bfloat16", "Queries."),
                tensor("k", ["num_tokens", "num_kv_heads", "head_dim"], "bfloat16", "Keys."),
                tensor("pos_ids", ["num_tokens"], "int32", "Position of each token in its sequence.")],
        outputs=[tensor("q_rope", ["num_tokens", "num_qo_heads", "head_dim"], "bfloat16", "Rotated queries."),
                 tensor("k_rope", ["num_tokens", "num_kv_heads", "head_dim"], "bfloat16", "Rotated keys.")],
        reference=reference("rope_llama31.py", **consts),
        tolerances=[tolerance("bfloat16", 2e-2, 2e-2,
                              "angles pos*freq reach ~3e4 rad: fp32 angle rounding (~2e-3 rad) and "
                              "fast sin/cos in kernels, then one bf16 rounding")])
