"""The shipped definitions, every shape derived from a model config in ``ingest/models/``."""

from __future__ import annotations

from ..models import ModelConfig, load_model_config
from . import ops
from .ops.common import model_tags


def _llama_8b(m: ModelConfig) -> list[dict]:
    name, h, kv, d = m.name, m.num_attention_heads, m.num_key_value_heads, m.head_dim
    facts = f"{h} query heads, {kv} kv heads, head_dim {d}, tp 1"
    qkv = (h + 2 * kv) * d
    return [
        ops.gqa_paged_decode(h, kv, d, 1, model=name, facts=facts),
        ops.gqa_paged_decode(h, kv, d, 16, model=name, facts=facts),
        ops.gqa_paged_prefill(h, kv, d, 16, model=name, facts=facts),
        ops.gqa_ragged_prefill(h, kv, d, model=name, facts=facts),
        ops.gemm(qkv, m.hidden_size, model=name, layer="attn.qkv_proj"),
        ops.gemm(m.hidden_size, h * d, model=name, layer="attn.o_proj"),
        ops.gemm(2 * m.intermediate_size, m.hidden_size, model=name, layer="mlp.gate_up_proj"),
        ops.gemm(m.hidden_size, m.intermediate_size, model=name, layer="mlp.down_proj"),
        ops.rmsnorm(m.hidden_size, m.rms_norm_eps, model=name),
        ops.fused_add_rmsnorm(m.hidden_size, m.rms_norm_eps, model=name),
        ops.silu_and_mul(m.intermediate_size, model=name),
        ops.rope_llama31(h, kv, d, m.rope_theta, m.rope_scaling, model=name),
        ops.top_k_top_p_sampling(m.vocab_size, model=name),
    ]


def _llama_70b_tp8(m: ModelConfig, tp: int = 8) -> list[dict]:
    name = m.name
    h, kv = m.heads_per_rank(tp)
    d, inter = m.head_dim, m.intermediate_size // tp
    facts = (f"{m.num_attention_heads} query heads and {m.num_key_value_heads} kv heads split "
             f"over tp {tp} -> {h} and {kv} per rank, head_dim {d}")
    return [
        ops.gqa_paged_decode(h, kv, d, 16, model=name, tp=tp, facts=facts),
        ops.gemm((h + 2 * kv) * d, m.hidden_size, model=name, tp=tp, layer=f"attn.qkv_proj (column-parallel, tp {tp})"),
        ops.gemm(m.hidden_size, h * d, model=name, tp=tp, layer=f"attn.o_proj (row-parallel, tp {tp})"),
        ops.gemm(2 * inter, m.hidden_size, model=name, tp=tp, layer=f"mlp.gate_up_proj (column-parallel, tp {tp})"),
        ops.gemm(m.hidden_size, inter, model=name, tp=tp, layer=f"mlp.down_proj (row-parallel, tp {tp})"),
        ops.silu_and_mul(inter, model=name, tp=tp),
    ]


def _qwen3_moe(m: ModelConfig) -> list[dict]:
    return [ops.moe(m.num_experts, m.num_experts_per_tok, m.hidden_size, m.moe_intermediate_size,
                    model=m.name)]


def _deepseek_v3(m: ModelConfig, tp: int = 8) -> list[dict]:
    heads = m.num_attention_heads // tp
    facts = (f"{m.num_attention_heads} heads over tp {tp} -> {heads} per rank, kv_lora_rank "
             f"{m.kv_lora_rank}, qk_rope_head_dim {m.qk_rope_head_dim}, sm_scale "
             f"1/sqrt({m.qk_nope_head_dim}+{m.qk_rope_head_dim}) x YaRN mscale^2 "
             f"= {m.mla_softmax_scale():.6f}")
    q_a = m.q_lora_rank
    return [
        ops.mla_paged_decode(heads, m.kv_lora_rank, m.qk_rope_head_dim, 1, m.mla_softmax_scale(),
                             model=m.name, tp=tp, facts=facts),
        ops.gemm_fp8_block_scale(q_a, m.hidden_size, model=m.name, tp=tp,
                                 layer=f"self_attn.q_a_proj ({m.hidden_size} -> q_lora_rank {q_a}, replicated)"),
        ops.rmsnorm(m.hidden_size, m.rms_norm_eps, model=m.name,
                    tags=model_tags(m.name, "any", tp)),
    ]


def definitions() -> list[dict]:
    """Every shipped definition, in a stable order (names are unique)."""
    rows = [*_llama_8b(load_model_config("llama-3.1-8b")),
            *_llama_70b_tp8(load_model_config("llama-3.1-70b")),
            *_qwen3_moe(load_model_config("qwen3-30b-a3b")),
            *_deepseek_v3(load_model_config("deepseek-v3"))]
    names = [r["name"] for r in rows]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate curated definitions: {sorted(duplicates)}")
    return rows


def by_name() -> dict[str, dict]:
    return {d["name"]: d for d in definitions()}
