"""Pieces every factory uses: axes, tensor specs, tolerances, reference templates."""

from __future__ import annotations

import re
from importlib import resources
from typing import Iterable

#: Scalar inputs carry their serving value in the description as "(default <value>)"; the
#: workload generator reads it back with ``scalar_default``.
_DEFAULT = re.compile(r"\(default ([-+0-9.eE]+)\)")


def const(name: str, value: int, description: str) -> dict:
    return {"name": name, "type": "const", "value": int(value), "description": description}


def var(name: str, description: str) -> dict:
    return {"name": name, "type": "var", "value": None, "description": description}


def tensor(name: str, shape: Iterable[str], dtype: str, description: str | None = None) -> dict:
    return {"name": name, "shape": list(shape), "dtype": dtype, "description": description}


def scalar(name: str, dtype: str, description: str, default: float) -> dict:
    return {"name": name, "shape": None, "dtype": dtype,
            "description": f"{description} (default {default!r})"}


def scalar_default(spec: dict) -> float | None:
    match = _DEFAULT.search(spec.get("description") or "")
    return float(match.group(1)) if match else None


def tolerance(dtype: str, atol: float, rtol: float, reason: str) -> dict:
    return {"dtype": dtype, "atol": atol, "rtol": rtol, "reason": reason}


# Tolerances shared by several families, each with the reason it is what it is.
BF16_ROUNDED_ONCE = tolerance(
    "bfloat16", 1e-2, 1e-2,
    "fp32 math rounded once to bf16 (2^-9 relative) plus fp32 reduction-order noise")
BF16_ATTENTION = tolerance(
    "bfloat16", 1e-2, 1e-2,
    "kernels round softmax probabilities to bf16 before P@V and rescale online in a different "
    "order; output rounded once to bf16")
LSE_FP32 = tolerance(
    "float32", 1e-3, 1e-3,
    "fp32 log2-sum-exp; kernels use exp2 with log2(e) folded into the scale (~1e-6 relative) "
    "and reduce in a different order")


def definition(*, name: str, op_type: str, tags: list[str], description: str, axes: list[dict],
               inputs: list[dict], outputs: list[dict], reference: str,
               tolerances: list[dict], constraints: list[str] | None = None) -> dict:
    return {
        "name": name, "op_type": op_type, "tags": tags, "description": description,
        "axes": axes, "inputs": inputs, "outputs": outputs, "reference": reference,
        "constraints": constraints or [], "tolerances": tolerances,
    }


def model_tags(model: str | None, stage: str, tp: int = 1, *extra: str) -> list[str]:
    tags = [f"stage:{stage}", f"tp:{tp}", *extra]
    return ([f"model:{model}"] if model else []) + tags


def reference(*files: str, **constants: object) -> str:
    """Concatenate reference files and set their module constants (``NAME = ...`` lines)."""
    source = "\n\n".join(_read(f) for f in files)
    for key, value in constants.items():
        pattern = re.compile(rf"^{key} = .*$", re.MULTILINE)
        if not pattern.search(source):
            raise KeyError(f"reference {files} has no constant {key}")
        source = pattern.sub(f"{key} = {value!r}", source, count=1)
    return source


def _read(file: str) -> str:
    return (resources.files(__package__) / "references" / file).read_text().strip() + "\n"
