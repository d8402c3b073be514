"""Top-k then top-p sampling from probabilities (flashinfer.sampling.top_k_top_p_sampling_from_probs)."""

from __future__ import annotations

from .common import const, definition, model_tags, reference, tensor, tolerance, var


def top_k_top_p_sampling(vocab_size: int, *, model: str | None = None, tp: int = 1,
                         tags: list[str] | None = None) -> dict:
    where = f" Vocabulary of {model}." if model else ""
    return definition(
        name=f"top_k_top_p_sampling_from_probs_v{vocab_size}", op_type="sampling",
        tags=tags or model_tags(model, "decode", tp),
        description=("Sample one token per row from probabilities after top-k filtering, "
                     "renormalisation and top-p (nucleus) filtering, in that order (flashinfer's "
                     "filter_apply_order='top_k_first'). Outputs are random: correctness is judged "
                     "on the distribution of many draws and on never leaving the kept set." + where),
        axes=[var("batch_size", "Rows (sequences) to sample."),
              const("vocab_size", vocab_size, "Vocabulary size.")],
        inputs=[tensor("probs", ["batch_size", "vocab_size"], "float32", "Row-stochastic probabilities."),
                tensor("top_k", ["batch_size"], "int32", "Tokens kept by top-k per row (<= 0: all)."),
                tensor("top_p", ["batch_size"], "float32", "Nucleus mass per row, in (0, 1].")],
        outputs=[tensor("samples", ["batch_size"], "int64", "Sampled token ids.")],
        reference=reference("top_k_top_p_sampling.py"),
        constraints=["((top_p > 0) & (top_p <= 1)).all()"],
        tolerances=[tolerance("int64", 0.0, 0.0,
                              "token ids are never compared elementwise; samples are checked "
                              "against the filtered distribution")])
