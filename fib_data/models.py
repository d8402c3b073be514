"""Model facts from Hugging Face ``config.json`` files (``ingest/models/<name>.json``).

Shapes of the curated definitions and of ingested traffic are derived from these, never typed in
by hand. The loader looks in the repository's ``ingest/models/`` first, then in the copy packaged
into a wheel (``fib_data/ingest_assets/models/``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
MODEL_DIRS = (_HERE.parent / "ingest" / "models", _HERE / "ingest_assets" / "models")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    model_type: str
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    rms_norm_eps: float
    rope_theta: float
    num_hidden_layers: int = 0
    rope_scaling: dict | None = None
    # MoE (None for dense models)
    num_experts: int | None = None
    num_experts_per_tok: int | None = None
    moe_intermediate_size: int | None = None
    norm_topk_prob: bool | None = None
    # MLA (None unless attention_kind == "mla")
    kv_lora_rank: int | None = None
    q_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    qk_nope_head_dim: int | None = None
    v_head_dim: int | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def attention_kind(self) -> str:
        return "mla" if self.kv_lora_rank else "gqa"

    @property
    def is_moe(self) -> bool:
        return bool(self.num_experts)

    def heads_per_rank(self, tp: int) -> tuple[int, int]:
        """(query heads, kv heads) on one tensor-parallel rank; kv heads are replicated if fewer."""
        if self.num_attention_heads % tp:
            raise ValueError(f"{self.name}: {self.num_attention_heads} heads do not split over tp={tp}")
        return self.num_attention_heads // tp, max(1, self.num_key_value_heads // tp)

    def mla_softmax_scale(self) -> float:
        """DeepSeek's MLA scale: 1/sqrt(qk_nope + qk_rope) times the YaRN mscale squared."""
        scale = 1.0 / math.sqrt(self.qk_nope_head_dim + self.qk_rope_head_dim)
        rs = self.rope_scaling or {}
        factor, mscale_all = rs.get("factor", 1.0), rs.get("mscale_all_dim", 0.0)
        if factor > 1 and mscale_all:
            mscale = 0.1 * mscale_all * math.log(factor) + 1.0
            scale *= mscale * mscale
        return scale


def model_path(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".json" and candidate.is_file():
        return candidate
    for folder in MODEL_DIRS:
        path = folder / f"{name_or_path}.json"
        if path.is_file():
            return path
    known = ", ".join(available_models()) or "none"
    raise FileNotFoundError(f"no model config {name_or_path!r} (known: {known})")


def available_models() -> list[str]:
    names = {p.stem for folder in MODEL_DIRS if folder.is_dir() for p in folder.glob("*.json")}
    return sorted(names)


def load_model_config(name_or_path: str | Path) -> ModelConfig:
    path = model_path(name_or_path)
    raw = json.loads(path.read_text())
    return from_hf_config(path.stem, raw, source=str(path))


def _get(raw: dict[str, Any], key: str, source: str, *alternatives: str) -> Any:
    for k in (key, *alternatives):
        if raw.get(k) is not None:
            return raw[k]
    raise ValueError(f"{source}: field {key!r} is missing")


def from_hf_config(name: str, raw: dict[str, Any], source: str = "<config>") -> ModelConfig:
    heads = int(_get(raw, "num_attention_heads", source))
    hidden = int(_get(raw, "hidden_size", source))
    return ModelConfig(
        name=name,
        model_type=str(raw.get("model_type", "")),
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=int(raw.get("num_key_value_heads") or heads),
        head_dim=int(raw.get("head_dim") or hidden // heads),
        intermediate_size=int(_get(raw, "intermediate_size", source)),
        vocab_size=int(_get(raw, "vocab_size", source)),
        rms_norm_eps=float(_get(raw, "rms_norm_eps", source)),
        rope_theta=float(raw.get("rope_theta", 10000.0)),
        num_hidden_layers=int(raw.get("num_hidden_layers", 0)),
        rope_scaling=raw.get("rope_scaling"),
        num_experts=raw.get("num_experts") or raw.get("n_routed_experts"),
        num_experts_per_tok=raw.get("num_experts_per_tok"),
        moe_intermediate_size=raw.get("moe_intermediate_size"),
        norm_topk_prob=raw.get("norm_topk_prob"),
        kv_lora_rank=raw.get("kv_lora_rank"),
        q_lora_rank=raw.get("q_lora_rank"),
        qk_rope_head_dim=raw.get("qk_rope_head_dim"),
        qk_nope_head_dim=raw.get("qk_nope_head_dim"),
        v_head_dim=raw.get("v_head_dim"),
        raw=raw,
    )
