"""RMSNorm and fused residual-add + RMSNorm (flashinfer.norm.rmsnorm / fused_add_rmsnorm)."""

from __future__ import annotations

from .common import BF16_ROUNDED_ONCE, const, definition, model_tags, reference, tensor, var


def _axes(hidden_size: int) -> list[dict]:
    return [var("batch_size", "Tokens in the batch."), const("hidden_size", hidden_size, "Model width.")]


def _where(model: str | None, eps: float) -> str:
    return f" Shapes from {model} (rms_norm_eps {eps:g})." if model else f" eps {eps:g}."


def rmsnorm(hidden_size: int, eps: float, *, model: str | None = None, tp: int = 1,
            tags: list[str] | None = None) -> dict:
    return definition(
        name=f"rmsnorm_h{hidden_size}", op_type="rmsnorm", tags=tags or model_tags(model, "any", tp),
        description=("RMSNorm y = x / sqrt(mean(x^2) + eps) * w over the hidden size, fp32 math."
                     + _where(model, eps)),
        axes=_axes(hidden_size),
        inputs=[tensor("hidden_states", ["batch_size", "hidden_size"], "bfloat16", "Input rows."),
                tensor("weight", ["hidden_size"], "bfloat16", "Learned scale.")],
        outputs=[tensor("output", ["batch_size", "hidden_size"], "bfloat16", "Normalised rows.")],
        reference=reference("rmsnorm.py", EPS=eps), tolerances=[BF16_ROUNDED_ONCE])


def fused_add_rmsnorm(hidden_size: int, eps: float, *, model: str | None = None, tp: int = 1,
                      tags: list[str] | None = None) -> dict:
    return definition(
        name=f"fused_add_rmsnorm_h{hidden_size}", op_type="rmsnorm",
        tags=tags or model_tags(model, "any", tp),
        description=("Residual add then RMSNorm: x = hidden_states + residual (fp32), "
                     "y = x / sqrt(mean(x^2) + eps) * w." + _where(model, eps)),
        axes=_axes(hidden_size),
        inputs=[tensor("hidden_states", ["batch_size", "hidden_size"], "bfloat16", "Layer output."),
                tensor("residual", ["batch_size", "hidden_size"], "bfloat16", "Residual stream."),
                tensor("weight", ["hidden_size"], "bfloat16", "Learned scale.")],
        outputs=[tensor("output", ["batch_size", "hidden_size"], "bfloat16", "Normalised sum.")],
        reference=reference("fused_add_rmsnorm.py", EPS=eps), tolerances=[BF16_ROUNDED_ONCE])
