"""SiLU-and-mul (SwiGLU), flashinfer.activation.silu_and_mul."""

from __future__ import annotations

from .common import BF16_ROUNDED_ONCE, const, definition, model_tags, reference, tensor, var


def silu_and_mul(intermediate_size: int, *, model: str | None = None, tp: int = 1,
                 tags: list[str] | None = None) -> dict:
    where = f" Shapes from {model} (intermediate size per rank {intermediate_size})." if model else ""
    return definition(
        name=f"silu_and_mul_h{intermediate_size}", op_type="silu_and_mul",
        tags=tags or model_tags(model, "any", tp),
        description=("SwiGLU activation out = silu(x[:, :h]) * x[:, h:] on the fused gate_up "
                     "projection output (gate half first), fp32 math." + where),
        axes=[var("batch_size", "Tokens in the batch."),
              const("hidden_size", intermediate_size, "Output width h."),
              const("gate_up_size", 2 * intermediate_size, "Input width 2h (gate, then up).")],
        inputs=[tensor("x", ["batch_size", "gate_up_size"], "bfloat16", "Gate and up projections.")],
        outputs=[tensor("output", ["batch_size", "hidden_size"], "bfloat16", "Activation.")],
        reference=reference("silu_and_mul.py"), tolerances=[BF16_ROUNDED_ONCE])
