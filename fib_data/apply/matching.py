"""Match a live call to a definition: family (name prefix), const axes, dtypes, device; then read
the var axes off the argument shapes.

This runs once per new call shape (the runtime memoises the outcome), so it favours clear checks
and reasons over speed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

_NUMBER = r"([-+]?[0-9][0-9.]*(?:e[-+]?[0-9]+)?)"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[str, ...] | None     # None: a scalar
    dtype: str


@dataclass(frozen=True)
class DefinitionSpec:
    name: str
    op_type: str
    tags: tuple[str, ...]
    consts: Mapping[str, int]
    var_axes: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    reference: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "DefinitionSpec":
        def specs(items):
            return tuple(TensorSpec(t["name"], tuple(t["shape"]) if t.get("shape") else None,
                                    t["dtype"]) for t in items)

        axes = row["axes"]
        return cls(row["name"], row["op_type"], tuple(row.get("tags") or ()),
                   {a["name"]: a["value"] for a in axes if a["type"] == "const"},
                   tuple(a["name"] for a in axes if a["type"] == "var"),
                   specs(row["inputs"]), specs(row["outputs"]), row.get("reference") or "")

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    def var_values(self, values: Mapping[str, Any]) -> tuple[int, ...] | str:
        """Var axes read off ``values`` (tensors by input name), or why they do not fit."""
        found: dict[str, int] = {}
        for spec in self.inputs:
            value = values[spec.name]
            if spec.shape is None:
                if _is_tensor(value) and value.dim() != 0:
                    return f"{spec.name}: expected a scalar, got shape {tuple(value.shape)}"
                continue
            if not _is_tensor(value):
                return f"{spec.name}: expected a tensor, got {type(value).__name__}"
            if value.dim() != len(spec.shape):
                return f"{spec.name}: expected {len(spec.shape)} dims, got {value.dim()}"
            for axis, size in zip(spec.shape, value.shape):
                want = self.consts.get(axis, found.setdefault(axis, size))
                if size != want:
                    return f"{spec.name}: axis {axis} is {size}, expected {want}"
        missing = [a for a in self.var_axes if a not in found]
        if missing:
            return f"var axes {missing} appear in no input shape"
        return tuple(found[a] for a in self.var_axes)

    def constant(self, name: str) -> float | None:
        """A constant the definition bakes in (eps, rope_theta, ...): tag ``name:<v>``, else a
        module-level ``NAME = <v>`` line of its reference (any case)."""
        for tag in self.tags:
            if tag.startswith(name + ":"):
                return float(tag[len(name) + 1:])
        m = re.search(rf"^{re.escape(name)}\s*=\s*{_NUMBER}\s*(?:#.*)?$", self.reference,
                      re.IGNORECASE | re.MULTILINE)
        return float(m.group(1)) if m else None

    def output_shapes(self, axes: Mapping[str, int]) -> list[tuple[int, ...]]:
        return [tuple(axes.get(a, self.consts.get(a)) for a in (o.shape or ())) for o in self.outputs]


def dtype_name(value: Any) -> str | None:
    dtype = getattr(value, "dtype", None)
    return None if dtype is None else str(dtype).removeprefix("torch.")


def match(specs: Iterable[DefinitionSpec], prefixes: tuple[str, ...], consts: Mapping[str, int],
          values: Mapping[str, Any], params: Mapping[str, float] | None = None
          ) -> tuple[DefinitionSpec | None, tuple[int, ...] | None, str]:
    """The first definition that fits, its var axes, and a reason (why it fits or why none did).

    ``consts``: const axes the call implies (each must be a const axis of the definition with that
    value). ``values``: what the adapter can pass, by input name (a superset of the inputs is
    fine). ``params``: call constants (eps, rope_theta, ...) that the definition must either take
as an input of that name or state with the same value.
    """
    reasons = []
    for spec in specs:
        if not spec.name.startswith(prefixes):
            continue
        why = _mismatch(spec, consts, values, params or {})
        if why is None:
            axes = spec.var_values(values)
            if isinstance(axes, tuple):
                return spec, axes, f"matched {spec.name}"
            why = axes
        reasons.append(f"{spec.name}: {why}")
    if not reasons:
        return None, None, f"no definition named {'|'.join(p + '*' for p in prefixes)}"
    return None, None, "; ".join(reasons)


def _mismatch(spec: DefinitionSpec, consts: Mapping[str, int], values: Mapping[str, Any],
              params: Mapping[str, float]) -> str | None:
    for axis, value in consts.items():
        if spec.consts.get(axis) != value:
            return f"const {axis}={value} but definition has {spec.consts.get(axis)}"
    missing = [n for n in spec.input_names if n not in values]
    if missing:
        return f"adapter cannot supply inputs {missing}"
    for t in spec.inputs:
        got = dtype_name(values[t.name])
        if got is not None and got != t.dtype:
            return f"{t.name} dtype {got}, definition wants {t.dtype}"
    for name, value in params.items():
        if name in spec.input_names:
            continue
        stated = spec.constant(name)
        if stated is None:
            return f"definition states no {name} to compare the call's {value} with"
        if not math.isclose(stated, float(value), rel_tol=1e-6):
            return f"{name}={value} but definition uses {stated}"
    return None


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "dim") and hasattr(value, "shape")
