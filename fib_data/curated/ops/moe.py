"""Mixture-of-experts layer: softmax top-k routing with renormalisation + SwiGLU experts (bf16)."""

from __future__ import annotations

from .common import const, definition, model_tags, reference, tensor, tolerance, var


def moe(num_experts: int, top_k: int, hidden_size: int, intermediate_size: int, *,
        model: str | None = None, tp: int = 1, tags: list[str] | None = None) -> dict:
    where = (f" Shapes from {model}: {num_experts} experts, {top_k} per token, hidden "
             f"{hidden_size}, moe_intermediate_size {intermediate_size}, norm_topk_prob true."
             if model else "")
    return definition(
        name=f"moe_softmax_topk{top_k}_renorm_e{num_experts}_h{hidden_size}_i{intermediate_size}",
        op_type="moe", tags=tags or model_tags(model, "any", tp),
        description=("Sparse MoE block: softmax over fp32 router logits, top-k experts, weights "
                     "renormalised to sum to 1, each expert computes down(silu(gate(x)) * up(x)), "
                     "outputs summed with the routing weights. Unquantised bf16 weights, all "
                     "experts local (expert parallel 1)." + where),
        axes=[var("seq_len", "Tokens in the batch."),
              const("num_experts", num_experts, "Routed experts."),
              const("hidden_size", hidden_size, "Model width."),
              const("intermediate_size", intermediate_size, "Expert intermediate width."),
              const("gemm1_out_size", 2 * intermediate_size, "Gate and up rows of GEMM1.")],
        inputs=[tensor("hidden_states", ["seq_len", "hidden_size"], "bfloat16", "Token activations."),
                tensor("routing_logits", ["seq_len", "num_experts"], "float32", "Router logits."),
                tensor("gate_up_weights", ["num_experts", "gemm1_out_size", "hidden_size"], "bfloat16",
                       "Per-expert gate rows then up rows (w13)."),
                tensor("down_weights", ["num_experts", "hidden_size", "intermediate_size"], "bfloat16",
                       "Per-expert down projection (w2).")],
        outputs=[tensor("output", ["seq_len", "hidden_size"], "bfloat16", "MoE block output.")],
        reference=reference("moe.py", TOP_K=top_k),
        tolerances=[tolerance("bfloat16", 3e-2, 3e-2,
                              "three bf16 roundings of intermediates (GEMM1, activation, per-expert "
                              "GEMM2 output) that kernels place and order differently")])
