"""Our row dicts -> FlashInfer Trace JSON objects (the current generation).

Optional upstream fields are written only when the row has them (null lists and strings mean
"absent in the source"), and ``destination_passing_style`` / ``binding`` only when they differ
from upstream's defaults, so that importing then exporting gives back the same JSON. Columns
upstream has no place for (tolerances, workload provenance and weight, timing, IQRs, flags, ...)
are not exported.
"""

from __future__ import annotations

import json
import math
from datetime import timezone
from typing import Any

from .read_upstream import NAMED_LIBS


def _put(out: dict, key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def definition_json(row: dict) -> dict:
    out: dict[str, Any] = {"name": row["name"]}
    _put(out, "description", row.get("description"))
    out["op_type"] = row["op_type"]
    _put(out, "tags", row.get("tags"))
    out["axes"] = {a["name"]: _axis(a) for a in row["axes"]}
    out["inputs"] = {t["name"]: _tensor(t) for t in row["inputs"]}
    out["outputs"] = {t["name"]: _tensor(t) for t in row["outputs"]}
    out["reference"] = row["reference"]
    _put(out, "constraints", row.get("constraints"))
    return out


def _axis(axis: dict) -> dict:
    out = {"type": axis["type"]}
    if axis["type"] == "const":
        out["value"] = axis["value"]
    _put(out, "description", axis.get("description"))
    return out


def _tensor(spec: dict) -> dict:
    out = {"shape": spec.get("shape"), "dtype": spec["dtype"]}
    _put(out, "description", spec.get("description"))
    return out


def solution_json(row: dict) -> dict:
    spec: dict[str, Any] = {"language": row["language"]}
    _put(spec, "target_hardware", row.get("target_hardware"))
    spec["entry_point"] = row["entry_point"]
    _put(spec, "dependencies", row.get("dependencies"))
    if row["destination_passing_style"] is not True:  # upstream's default is True
        spec["destination_passing_style"] = row["destination_passing_style"]
    _put(spec, "binding", row.get("binding"))
    out: dict[str, Any] = {"name": row["name"], "definition": row["definition"]}
    _put(out, "description", row.get("description"))
    out["author"] = row["author"]
    out["spec"] = spec
    out["sources"] = [{"path": s["path"], "content": s["content"]} for s in row["sources"]]
    return out


def blob_path(definition: str, sha: str) -> str:
    return f"blob/workloads/{definition}/{sha}.safetensors"


def workload_json(row: dict) -> dict:
    return {"uuid": row["uuid"], "axes": {a["name"]: a["value"] for a in row["axes"]},
            "inputs": {i["name"]: _input(i, row["definition"]) for i in row["inputs"]}}


def _input(inp: dict, definition: str) -> dict:
    if inp["type"] == "scalar":
        return {"type": "scalar", "value": json.loads(inp["value"])}
    if inp["type"] == "safetensors":
        return {"type": "safetensors", "path": blob_path(definition, inp["sha256"]),
                "tensor_key": inp["tensor_key"]}
    return {"type": inp["type"]}


def workload_line(row: dict) -> str:
    return json.dumps({"definition": row["definition"], "solution": None,
                       "workload": workload_json(row), "evaluation": None})


def _num(value: float | None) -> float | str | None:
    # pydantic (ser_json_inf_nan="strings") writes non-finite floats as strings.
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def evaluation_json(row: dict) -> dict:
    env = row["environment"]
    libs = {name: env[name] for name in NAMED_LIBS if env.get(name) is not None}
    libs.update((lib["name"], lib["version"]) for lib in env.get("other_libs") or [])
    ts = row["timestamp"].astimezone(timezone.utc).replace(tzinfo=None)
    out: dict[str, Any] = {"status": row["status"],
                           "environment": {"hardware": env["hardware"], "libs": libs},
                           "timestamp": ts.isoformat()}
    _put(out, "log", row.get("log"))
    extra = row.get("correctness_extra")
    errors = (row.get("max_relative_error"), row.get("max_absolute_error"))
    if extra is not None or errors != (None, None):
        correctness = {"max_relative_error": _num(errors[0]), "max_absolute_error": _num(errors[1])}
        _put(correctness, "extra", None if extra is None else json.loads(extra))
        out["correctness"] = correctness
    perf = {k: _num(row.get(k)) for k in ("latency_ms", "reference_latency_ms", "speedup_factor")}
    if any(v is not None for v in perf.values()):
        out["performance"] = perf
    return out


def trace_line(row: dict, workload_text: str) -> str:
    """One traces/*.jsonl line; the workload comes pre-serialised (shared by many traces)."""
    return (f'{{"definition": {json.dumps(row["definition"])}, "workload": {workload_text}, '
            f'"solution": {json.dumps(row["solution"])}, '
            f'"evaluation": {json.dumps(evaluation_json(row))}}}')
