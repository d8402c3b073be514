"""Fresh inputs for one trial: seeded random tensors, scalars, stored blobs, then ``prepare``.

Floats are N(0, 1) in the declared dtype (fp8 is drawn in fp32, then cast); integer and bool
tensors marked ``random`` get small values and are expected to be fixed by the reference's
``prepare(inputs, axes)`` or stored as blobs, as the definitions contract says.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping

_DEFAULT = re.compile(r"\(default ([-+0-9.eE]+|true|false|True|False)\)")

_TORCH_NAMES = {
    "float64": "float64", "float32": "float32", "float16": "float16", "bfloat16": "bfloat16",
    "float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2", "float4_e2m1": "float4_e2m1fn_x2",
    "int64": "int64", "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8",
    "bool": "bool",
}


def torch_dtype(name: str):
    import torch

    try:
        return getattr(torch, _TORCH_NAMES[name])
    except (KeyError, AttributeError):
        raise ValueError(f"dtype {name!r} is not supported by this torch") from None


def is_float(name: str) -> bool:
    return name.startswith(("float", "bfloat"))


def axis_values(definition: Mapping, workload: Mapping) -> dict[str, int]:
    """Const axes from the definition plus the workload's var axes."""
    axes = {a["name"]: a["value"] for a in definition["axes"] if a["type"] == "const"}
    axes.update({a["name"]: a["value"] for a in workload["axes"]})
    missing = [a["name"] for a in definition["axes"] if axes.get(a["name"]) is None]
    if missing:
        raise ValueError(f"workload {workload.get('uuid')}: no value for axes {', '.join(missing)}")
    return axes


def shape_of(spec: Mapping, axes: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(int(axes[d]) if not str(d).lstrip("-").isdigit() else int(d)
                 for d in (spec.get("shape") or []))


def is_scalar(spec: Mapping) -> bool:
    return not spec.get("shape")


def trial_seed(seed: int, workload_uuid: str, trial: int, salt: str = "") -> int:
    """A 63-bit seed mixed from the run seed, a per-run secret salt, the workload and the trial."""
    digest = hashlib.sha256(f"{seed}|{salt}|{workload_uuid}|{trial}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def make_inputs(definition: Mapping, workload: Mapping, blobs: Any, device: str = "cpu",
                seed: int = 0, prepare: Any = "auto", loaded: dict | None = None) -> dict[str, Any]:
    """Inputs in definition order: name -> tensor (or Python scalar).

    ``blobs`` is a ``BlobStore`` or a mapping sha256 -> safetensors bytes (what workers get).
    ``prepare="auto"`` uses the reference's ``prepare`` if it defines one; pass None to skip.
    ``loaded`` (sha256 -> decoded tensors) keeps blobs decoded and hash-checked across calls;
    every call still gets its own copies.
    """
    import torch

    axes = axis_values(definition, workload)
    how = {i["name"]: i for i in workload["inputs"]}
    gen = torch.Generator(device=device).manual_seed(int(seed))
    loaded = {} if loaded is None else loaded
    out: dict[str, Any] = {}
    for spec in definition["inputs"]:
        entry = how.get(spec["name"], {"type": "random"})
        kind = entry["type"]
        if kind == "scalar":
            out[spec["name"]] = _scalar(json.loads(entry["value"]), spec["dtype"])
        elif kind == "safetensors":
            tensors = loaded.get(entry["sha256"])
            if tensors is None:
                tensors = loaded[entry["sha256"]] = _load_blob(blobs, entry["sha256"])
            key = entry.get("tensor_key") or spec["name"]
            if key not in tensors:
                raise ValueError(f"workload {workload.get('uuid')}: blob {entry['sha256'][:12]} "
                                 f"has no tensor {key!r}")
            out[spec["name"]] = tensors[key].to(device, copy=True)
        elif is_scalar(spec):
            out[spec["name"]] = _random_scalar(spec, gen, device)
        else:
            out[spec["name"]] = _random_tensor(shape_of(spec, axes), spec["dtype"], gen, device)
    if prepare == "auto":
        from .reference import reference_module

        prepare = getattr(reference_module(definition), "prepare", None)
    if prepare is not None:
        fixed = prepare(dict(out), dict(axes))
        out = {spec["name"]: fixed[spec["name"]] for spec in definition["inputs"]}
    return out


def _load_blob(blobs: Any, sha: str) -> dict:
    if isinstance(blobs, Mapping):
        from safetensors.torch import load

        if sha not in blobs:
            raise ValueError(f"blob {sha} was not shipped with the job")
        data = blobs[sha]
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError(f"blob {sha} is corrupt")
        return load(data)
    return blobs.load(sha, framework="torch")


def _scalar(value: Any, dtype: str) -> Any:
    if dtype == "bool":
        return bool(value)
    return float(value) if is_float(dtype) else int(value)


def _random_scalar(spec: Mapping, gen, device: str) -> Any:
    import torch

    match = _DEFAULT.search(spec.get("description") or "")
    if match:
        return _scalar(json.loads(match.group(1).lower()), spec["dtype"])
    return _scalar(torch.rand((), generator=gen, device=device).item() + 0.5, spec["dtype"])


def _random_tensor(shape: tuple[int, ...], dtype: str, gen, device: str):
    import torch

    target = torch_dtype(dtype)
    if is_float(dtype):
        if dtype == "float4_e2m1":
            raise ValueError("random float4 inputs are not supported; store them as blobs")
        if target in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            return torch.randn(shape, generator=gen, device=device, dtype=target)  # one kernel, no float32 copy
        return torch.randn(shape, generator=gen, device=device, dtype=torch.float32).to(target)
    if dtype == "bool":
        return torch.randint(0, 2, shape, generator=gen, device=device).bool()
    return torch.randint(0, 8, shape, generator=gen, device=device, dtype=torch.int64).to(target)


def output_shapes(definition: Mapping, axes: Mapping[str, int]) -> list[tuple[int, ...]]:
    return [shape_of(o, axes) for o in definition["outputs"]]
