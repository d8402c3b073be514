"""FlashInfer level-10 dumps -> calls with real index tensors -> kernel uses.

``FLASHINFER_LOGLEVEL=10`` writes one folder per call, ``<stamp>_<func>_call<NNNN>/`` (newer
names add ``_pid<PID>_``), holding ``inputs.safetensors`` or ``inputs.pt`` (keys ``arg_<i>`` and
``kwarg_<name>``) and ``metadata.json`` (older) or ``metadata.jsonl`` (newer; the last record
wins) with ``function_name``, ``process_id``, ``timestamp``, ``input_metadata`` (non-tensor
arguments), ``function_signature``. Folders are read in name order (the stamp), so each wrapper
``.run`` pairs with the latest ``.plan`` of the same wrapper in the same process.

Integer tensors (indptrs, page tables, last-page lengths) are read with their values and become
safetensors blobs, so the workloads carry the page tables seen in serving; float tensors keep
only their shape and stay ``random``.
"""

from __future__ import annotations

import ast
import json
import re
import struct
from datetime import datetime
from pathlib import Path

import numpy as np

from .calls import Call, Tensor, name_positional, to_uses
from .report import IngestReport

NOTES = ("FlashInfer level-10 dump: real index tensors (indptrs, page tables) stored as blobs; "
         "float tensors random.")
_INT = {"I32": np.int32, "I64": np.int64, "int32": np.int32, "int64": np.int64}
_PID = re.compile(r"_pid(\d+)_")


def looks_like(path: Path) -> bool:
    return any(True for _ in _call_dirs(path))


def _call_dirs(root: Path):
    for meta in sorted(root.glob("*/metadata.json*")) + sorted(root.glob("metadata.json*")):
        folder = meta.parent
        if (folder / "inputs.safetensors").is_file() or (folder / "inputs.pt").is_file():
            yield folder


def read(paths: list[Path], report: IngestReport, model: str | None, tp: int):
    calls = []
    for root in paths:
        for folder in dict.fromkeys(_call_dirs(root)):
            report.lines_read += 1
            call = _call(folder, report)
            if call is not None:
                report.batches_found += 1
                calls.append(call)
    yield from to_uses(calls, report, model, tp)


def _metadata(folder: Path) -> dict:
    jsonl = folder / "metadata.jsonl"
    if jsonl.is_file():
        records = [json.loads(l) for l in jsonl.read_text().splitlines() if l.strip()]
        if not records:
            raise ValueError("metadata.jsonl is empty")
        return records[-1]
    return json.loads((folder / "metadata.json").read_text())


def _call(folder: Path, report: IngestReport) -> Call | None:
    where = str(folder)
    try:
        meta = _metadata(folder)
        tensors = _tensors(folder)
    except (OSError, ValueError, KeyError, struct.error) as exc:
        report.skip(f"unreadable dump ({type(exc).__name__})", where, str(exc))
        return None
    name = meta.get("function_name")
    if not isinstance(name, str):
        report.skip("dump metadata without function_name", where)
        return None
    values = {**{k: _scalar(v) for k, v in (meta.get("input_metadata") or {}).items()}, **tensors}
    indices = [int(k[4:]) for k in values if k.startswith("arg_") and k[4:].isdigit()]
    positional = [values.get(f"arg_{i}") for i in range(max(indices) + 1)] if indices else []
    keyword = {k[len("kwarg_"):]: v for k, v in values.items() if k.startswith("kwarg_")}
    signature = _signature(meta.get("function_signature"))
    if signature and signature[0] == "self":
        # arg_0 is the wrapper itself (never saved): names line up after dropping it.
        signature, positional = signature[1:], positional[1:]
    pid = str(meta.get("process_id") or (_PID.search(folder.name) or [None, ""])[1])
    return Call(name, name_positional(name, positional, keyword, signature or None), where=where,
                when=_when(meta.get("timestamp")), process=pid,
                complete=meta.get("execution_status", "completed") == "completed")


def _tensors(folder: Path) -> dict[str, Tensor]:
    path = folder / "inputs.safetensors"
    if path.is_file():
        return _read_safetensors(path.read_bytes())
    import torch  # only .pt dumps need torch

    loaded = torch.load(folder / "inputs.pt", map_location="cpu", weights_only=True)
    out = {}
    for key, t in loaded.items():
        if isinstance(t, torch.Tensor):
            ints = t.dtype in (torch.int32, torch.int64)
            out[key] = Tensor(tuple(t.shape), str(t.dtype).replace("torch.", ""),
                              t.numpy() if ints else None)
    return out


def _read_safetensors(data: bytes) -> dict[str, Tensor]:
    """Shapes of every tensor, values of the integer ones (floats may be bf16, which numpy lacks)."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for key, spec in header.items():
        if key == "__metadata__":
            continue
        shape, dtype = tuple(spec["shape"]), spec["dtype"]
        values = None
        if dtype in _INT:
            lo, hi = spec["data_offsets"]
            values = np.frombuffer(data[8 + n + lo:8 + n + hi], dtype=_INT[dtype]).reshape(shape)
        out[key] = Tensor(shape, dtype.lower(), values)
    return out


def _scalar(value):
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def _signature(text) -> list[str]:
    if not isinstance(text, str):
        return []
    inner = re.sub(r"\)\s*->.*$", "", text.strip()).lstrip("(").rstrip(")")
    names, depth, current = [], 0, ""
    for ch in inner + ",":
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            token = re.split(r"[:=\s]", current.strip())[0]
            if token and not token.startswith("*") and token != "/":
                names.append(token)
            current = ""
        else:
            current += ch
    return names


def _when(value) -> datetime | None:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
