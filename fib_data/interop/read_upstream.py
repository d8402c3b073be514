"""FlashInfer Trace JSON objects (both generations) -> our row dicts, with every problem listed.

Field names follow flashinfer_bench/data/{definition,workload,solution,trace}.py. The 2025-07
generation spells ``op_type`` as ``type``, the environment's ``hardware`` as ``device``, keeps a
``log_file`` name instead of the log text, capitalises languages ("Python") and may give an entry
point without ``file::``. Unknown fields are problems, never dropped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import Problem
from ..hashing import environment_hash, solution_hash
from ..schema import AXIS_KINDS, BINDINGS, DTYPES, LANGUAGES, STATUSES

#: Environment libs with a column of their own; any other lib goes to other_libs, order kept.
NAMED_LIBS = ("torch", "triton", "cuda", "flashinfer", "python", "driver")

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass
class Where:
    """Collects problems found in one source row (a JSON file or one JSONL line)."""

    table: str
    file: str
    line: int | None
    text: str | None = None
    problems: list[Problem] = field(default_factory=list)

    def add(self, fld: str, message: str, value: Any = None) -> None:
        self.problems.append(Problem(self.table, self.file, self._line(fld), fld, message, value))

    def _line(self, fld: str) -> int | None:
        # A .json file: point at the first line naming the field, so editors jump there.
        if self.text is None:
            return self.line
        lines = self.text.splitlines()
        found = 0
        for part in fld.replace("[", ".").split("."):  # axes.d.value: axes, then d, then value
            key = f'"{part}"'
            found = next((i for i in range(found, len(lines)) if key in lines[i]), found)
        return found + 1

    def unknown(self, obj: dict, known: set[str], prefix: str = "") -> None:
        for key in obj:
            if key not in known:
                self.add(prefix + key, "field not in the FlashInfer Trace schema; not imported",
                         obj[key])


# ---- scalar helpers ----------------------------------------------------------------------
def _string(obj: dict, key: str, at: Where, prefix: str = "", required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            at.add(prefix + key, "required field is missing")
        return None
    if not isinstance(value, str) or (required and not value):
        at.add(prefix + key, "must be a non-empty string", value)
        return None
    return value


def _strings(obj: dict, key: str, at: Where, prefix: str = "") -> list[str] | None:
    """A list of strings; absent stays None so that export writes it back only if it was there."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        at.add(prefix + key, "must be a list of strings", value)
        return None
    return value


def _mapping(obj: dict, key: str, at: Where, prefix: str = "") -> dict:
    value = obj.get(key)
    if not isinstance(value, dict):
        at.add(prefix + key, "must be an object" if key in obj else "required field is missing",
               value)
        return {}
    return value


def _number(value: Any, fld: str, at: Where) -> float | None:
    if value is None:
        return None
    if isinstance(value, str) and value in _NONFINITE:  # pydantic writes NaN as a string
        return _NONFINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        at.add(fld, "must be a number", value)
        return None
    return float(value)


def _generation_alias(obj: dict, new: str, old: str, at: Where, prefix: str = "") -> Any:
    if new in obj and old in obj and obj[new] != obj[old]:
        at.add(prefix + old, f"conflicts with {prefix}{new}", obj[old])
    return obj[new] if new in obj else obj.get(old)


# ---- definitions -------------------------------------------------------------------------
_DEFINITION_KEYS = {"name", "op_type", "type", "description", "tags", "axes", "inputs", "outputs",
                    "reference", "constraints"}


def definition_row(obj: dict, at: Where) -> dict:
    at.unknown(obj, _DEFINITION_KEYS)
    op_type = _generation_alias(obj, "op_type", "type", at)
    if not isinstance(op_type, str) or not op_type:
        at.add("op_type", "required non-empty string (2025-07 files call it `type`)", op_type)
    return {
        "name": _string(obj, "name", at),
        "op_type": op_type,
        "tags": _strings(obj, "tags", at),
        "description": _string(obj, "description", at, required=False),
        "axes": [_axis(name, spec, at) for name, spec in _mapping(obj, "axes", at).items()],
        "inputs": _tensors(obj, "inputs", at),
        "outputs": _tensors(obj, "outputs", at),
        "reference": _string(obj, "reference", at),
        "constraints": _strings(obj, "constraints", at),
        "tolerances": None,
    }


def _axis(name: str, spec: Any, at: Where) -> dict:
    fld = f"axes.{name}"
    if not isinstance(spec, dict):
        at.add(fld, "must be an object", spec)
        return {"name": name, "type": None, "value": None, "description": None}
    at.unknown(spec, {"type", "value", "description"}, fld + ".")
    kind, value = spec.get("type"), spec.get("value")
    if kind not in AXIS_KINDS:
        at.add(fld + ".type", f"must be one of {', '.join(AXIS_KINDS)}", kind)
    if kind == "const" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        at.add(fld + ".value", "a const axis needs a non-negative integer value", value)
    if kind == "var" and value is not None:
        at.add(fld + ".value", "a var axis has no value", value)
    return {"name": name, "type": kind, "value": value if isinstance(value, int) else None,
            "description": _string(spec, "description", at, fld + ".", required=False)}


def _tensors(obj: dict, key: str, at: Where) -> list[dict]:
    out = []
    for name, spec in _mapping(obj, key, at).items():
        fld = f"{key}.{name}"
        if not isinstance(spec, dict):
            at.add(fld, "must be an object", spec)
            continue
        at.unknown(spec, {"shape", "dtype", "description"}, fld + ".")
        if "shape" not in spec:
            at.add(fld + ".shape", "required field is missing (null for a scalar)")
        shape = _strings(spec, "shape", at, fld + ".")
        dtype = spec.get("dtype")
        if dtype not in DTYPES:
            at.add(fld + ".dtype", "unknown dtype", dtype)
        out.append({"name": name, "shape": shape, "dtype": dtype,
                    "description": _string(spec, "description", at, fld + ".", required=False)})
    return out


# ---- solutions ---------------------------------------------------------------------------
_SOLUTION_KEYS = {"name", "definition", "author", "description", "spec", "sources"}
_SPEC_KEYS = {"language", "target_hardware", "entry_point", "dependencies",
              "destination_passing_style", "binding"}
#: 2025-07 build fields that the current schema dropped; accepted only when empty.
_RETIRED_SPEC_KEYS = {"build_commands", "build_steps"}


def solution_row(obj: dict, at: Where) -> dict:
    at.unknown(obj, _SOLUTION_KEYS)
    spec = _mapping(obj, "spec", at)
    at.unknown(spec, _SPEC_KEYS | _RETIRED_SPEC_KEYS, "spec.")
    for key in _RETIRED_SPEC_KEYS & spec.keys():
        if spec[key]:
            at.add(f"spec.{key}", "non-empty build steps have no place in the current schema",
                   spec[key])
    sources = _sources(obj, at)
    row = {
        "name": _string(obj, "name", at),
        "definition": _string(obj, "definition", at),
        "author": _string(obj, "author", at),
        "description": _string(obj, "description", at, required=False),
        "language": _language(spec, at),
        "target_hardware": _strings(spec, "target_hardware", at, "spec."),
        "entry_point": _entry_point(spec, sources, at),
        "destination_passing_style": _dps(spec, at),
        "binding": spec.get("binding"),
        "dependencies": _strings(spec, "dependencies", at, "spec."),
        "sources": sources,
    }
    if row["binding"] is not None and row["binding"] not in BINDINGS:
        at.add("spec.binding", f"must be one of {', '.join(BINDINGS)}", row["binding"])
    row["content_hash"] = solution_hash(row)
    return row


def _language(spec: dict, at: Where) -> str | None:
    value = spec.get("language")
    # 2025-07 wrote "Python", "Triton"; the language set itself is unchanged.
    lang = value.lower() if isinstance(value, str) else value
    if lang not in LANGUAGES:
        at.add("spec.language", f"must be one of {', '.join(LANGUAGES)}", value)
    return lang


def _dps(spec: dict, at: Where) -> bool:
    value = spec.get("destination_passing_style", True)  # upstream's default
    if not isinstance(value, bool):
        at.add("spec.destination_passing_style", "must be true or false", value)
        return True
    return value


def _sources(obj: dict, at: Where) -> list[dict]:
    value = obj.get("sources")
    if not isinstance(value, list) or not value:
        at.add("sources", "must be a non-empty list of {path, content}", value)
        return []
    out = []
    for i, src in enumerate(value):
        fld = f"sources[{i}]"
        if not isinstance(src, dict):
            at.add(fld, "must be an object", src)
            continue
        at.unknown(src, {"path", "content"}, fld + ".")
        out.append({"path": _string(src, "path", at, fld + "."),
                    "content": _string(src, "content", at, fld + ".")})
    return out


def _entry_point(spec: dict, sources: list[dict], at: Where) -> str | None:
    value = _string(spec, "entry_point", at, "spec.")
    if value is None or value.count("::") == 1:
        return value
    if "::" not in value and len(sources) == 1 and sources[0]["path"]:
        # 2025-07 named only the function; with one source file there is only one place for it.
        return f"{sources[0]['path']}::{value}"
    at.add("spec.entry_point", "must be file::function (a bare function name is accepted only "
           "when the solution has exactly one source file)", value)
    return None


# ---- workloads ---------------------------------------------------------------------------
def workload_fields(obj: Any, at: Where, need_uuid: bool = True) -> dict:
    """The ``workload`` object of a trace line -> uuid/axes/inputs (inputs keep a blob path)."""
    if not isinstance(obj, dict):
        at.add("workload", "must be an object", obj)
        return {"uuid": None, "axes": [], "inputs": []}
    at.unknown(obj, {"uuid", "axes", "inputs"}, "workload.")
    axes = []
    for name, value in _mapping(obj, "axes", at, "workload.").items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            at.add(f"workload.axes.{name}", "must be a non-negative integer", value)
        axes.append({"name": name, "value": value})
    return {
        "uuid": _string(obj, "uuid", at, "workload.", required=need_uuid),
        "axes": axes,
        "inputs": [_input(name, spec, at)
                   for name, spec in _mapping(obj, "inputs", at, "workload.").items()],
    }


def _input(name: str, spec: Any, at: Where) -> dict:
    fld = f"workload.inputs.{name}"
    row = {"name": name, "type": None, "value": None, "sha256": None, "tensor_key": None,
           "path": None}
    if not isinstance(spec, dict):
        at.add(fld, "must be an object", spec)
        return row
    kind = row["type"] = spec.get("type")
    if kind == "random":
        at.unknown(spec, {"type"}, fld + ".")
    elif kind == "scalar":
        at.unknown(spec, {"type", "value"}, fld + ".")
        value = spec.get("value")
        if isinstance(value, (bool, int, float)):
            row["value"] = json.dumps(value)  # a JSON literal keeps int / float / bool apart
        else:
            at.add(fld + ".value", "a scalar input needs an int, float or bool value", value)
    elif kind == "safetensors":
        at.unknown(spec, {"type", "path", "tensor_key"}, fld + ".")
        row["path"] = _string(spec, "path", at, fld + ".")
        row["tensor_key"] = _string(spec, "tensor_key", at, fld + ".")
    else:
        at.add(fld + ".type", "must be random, scalar or safetensors", kind)
    return row


# ---- traces -> evaluations ---------------------------------------------------------------
_TRACE_KEYS = {"definition", "workload", "solution", "evaluation"}
_EVALUATION_KEYS = {"status", "environment", "timestamp", "log", "log_file", "correctness",
                    "performance"}


def is_workload_only(obj: dict) -> bool:
    # 2025-07 wrote "" and {} where the current format writes null.
    return not obj.get("solution") and not obj.get("evaluation")


def trace_header(obj: Any, at: Where) -> dict | None:
    if not isinstance(obj, dict):
        at.add("*", "line is not a JSON object", obj)
        return None
    at.unknown(obj, _TRACE_KEYS)
    return {"definition": _string(obj, "definition", at)}


def evaluation_fields(obj: dict, at: Where) -> dict:
    """The ``evaluation`` object of a trace -> evaluation columns (not the keys to resolve)."""
    ev = _mapping(obj, "evaluation", at)
    at.unknown(ev, _EVALUATION_KEYS, "evaluation.")
    status = ev.get("status")
    if status not in STATUSES:
        at.add("evaluation.status", f"must be one of {', '.join(STATUSES)}", status)
    env = _environment(ev, at)
    row = {"status": status, "environment": env,
           "environment_hash": environment_hash(env) if env else None,
           "timestamp": _timestamp(ev.get("timestamp"), at), "log": _log(ev, at),
           **_correctness(ev, at), **_performance(ev, at)}
    return row


def _log(ev: dict, at: Where) -> str | None:
    log = _string(ev, "log", at, "evaluation.", required=False)
    log_file = _string(ev, "log_file", at, "evaluation.", required=False)
    if log_file is None:
        return log
    if log:
        at.add("evaluation.log_file", "both log and log_file are given", log_file)
    # 2025-07 kept the log in a side file that the snapshot does not ship; keep its name.
    return f"log_file: {log_file}"


def _environment(ev: dict, at: Where) -> dict | None:
    env = _mapping(ev, "environment", at, "evaluation.")
    at.unknown(env, {"hardware", "device", "libs"}, "evaluation.environment.")
    hardware = _generation_alias(env, "hardware", "device", at, "evaluation.environment.")
    if not isinstance(hardware, str) or not hardware:
        at.add("evaluation.environment.hardware",
               "required non-empty string (2025-07 files call it `device`)", hardware)
        return None
    libs = env.get("libs") or {}
    if not isinstance(libs, dict) or not all(isinstance(v, str) for v in libs.values()):
        at.add("evaluation.environment.libs", "must map library names to version strings", libs)
        libs = {}
    row: dict[str, Any] = {"hardware": hardware, "gpu": None}
    row.update({name: libs.get(name) for name in NAMED_LIBS})
    row["other_libs"] = [{"name": k, "version": v} for k, v in libs.items() if k not in NAMED_LIBS]
    return row


def _timestamp(value: Any, at: Where) -> datetime | None:
    if not isinstance(value, str) or not value:
        at.add("evaluation.timestamp", "required ISO 8601 string", value)
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        at.add("evaluation.timestamp", "not an ISO 8601 time", value)
        return None
    # Upstream writes datetime.now().isoformat() without a zone; we store it as UTC.
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _correctness(ev: dict, at: Where) -> dict:
    c = ev.get("correctness")
    empty = {"max_relative_error": None, "max_absolute_error": None, "correctness_extra": None}
    if c is None:
        return empty
    if not isinstance(c, dict):
        at.add("evaluation.correctness", "must be an object", c)
        return empty
    at.unknown(c, {"max_relative_error", "max_absolute_error", "extra"}, "evaluation.correctness.")
    extra = c.get("extra")
    if extra is not None and not isinstance(extra, dict):
        at.add("evaluation.correctness.extra", "must be an object", extra)
        extra = None
    return {f: _number(c.get(f, 0.0), f"evaluation.correctness.{f}", at)
            for f in ("max_relative_error", "max_absolute_error")} | {
        "correctness_extra": None if extra is None else json.dumps(extra, allow_nan=True)}


def _performance(ev: dict, at: Where) -> dict:
    p = ev.get("performance")
    names = ("latency_ms", "reference_latency_ms", "speedup_factor")
    if p is None:
        return dict.fromkeys(names)
    if not isinstance(p, dict):
        at.add("evaluation.performance", "must be an object", p)
        return dict.fromkeys(names)
    at.unknown(p, set(names), "evaluation.performance.")
    return {f: _number(p.get(f, 0.0), f"evaluation.performance.{f}", at) for f in names}
