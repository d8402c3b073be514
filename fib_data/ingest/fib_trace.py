"""flashinfer-bench tracing output -> workloads rows with their blobs.

The tracing runtime (``FIB_ENABLE_TRACING=1``) writes ``workloads/<op_type>/<def>.jsonl``, one
trace per line (``{"definition", "workload": {"uuid", "axes", "inputs"}, ...}``), and dumps the
inputs it keeps to ``blob/workloads/<op_type>/<def>/<def>_<uuid>.safetensors``, referenced as
``{"type": "safetensors", "path": <relative to the root>, "tensor_key": ...}``. Lines are read
with the FlashInfer Trace reader of ``fib_data.interop`` and the blobs with its resolver. The
definitions come from the dataset, from ``definitions/`` beside the traces, or from the curated
catalog, by name. Every line is one observed call: identical shapes merge into one row whose
weight counts them (the uuid of the first is kept).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..blobs import BlobStore
from ..dataset import Dataset
from ..interop.blob_inputs import SourceBlobs
from ..interop.read_upstream import Where, definition_row, trace_header, workload_fields
from .report import IngestReport


def looks_like(path: Path) -> bool:
    return any((path / "workloads").rglob("*.jsonl")) if (path / "workloads").is_dir() else False


def read(paths: list[Path], ds: Dataset, store: BlobStore, report: IngestReport) -> tuple[list[dict], list[dict]]:
    definitions = _definitions(paths, ds, report)
    merged: dict[tuple, dict] = {}
    for root in paths:
        blobs = SourceBlobs(root)
        for path in sorted((root / "workloads").rglob("*.jsonl")):
            with open(path, encoding="utf-8") as fh:
                for number, text in enumerate(fh, 1):
                    report.lines_read += 1
                    if text.strip():
                        row = _row(text, f"{path}:{number}", blobs, store, definitions, report)
                        if row is not None:
                            report.batches_found += 1
                            _merge(merged, row)
    return list(merged.values()), [definitions[n] for n in {r["definition"] for r in merged.values()}
                                   if n in definitions]


def _definitions(paths: list[Path], ds: Dataset, report: IngestReport) -> dict[str, dict]:
    from ..curated.catalog import by_name

    found = dict(by_name())
    for root in paths:
        for path in sorted((root / "definitions").rglob("*.json")) if (root / "definitions").is_dir() else []:
            text = path.read_text(encoding="utf-8")
            at = Where("definitions", str(path), None, text)
            row = definition_row(json.loads(text), at)
            if at.problems:
                report.skip("invalid definition file", str(path), str(at.problems[0]))
            else:
                found[row["name"]] = row
    for row in ds.read("definitions").to_pylist():
        found[row["name"]] = row
    return found


def _row(text: str, where: str, blobs: SourceBlobs, store: BlobStore, definitions: dict, report) -> dict | None:
    file, _, line = where.rpartition(":")
    at = Where("workloads", file, int(line))
    try:
        obj = json.loads(text)
    except ValueError:
        report.skip("line is not JSON", where, text.strip())
        return None
    header = trace_header(obj, at)
    fields = workload_fields(obj.get("workload") if isinstance(obj, dict) else None, at)
    if at.problems:
        report.skip("invalid trace line", where, str(at.problems[0]))
        return None
    name = header["definition"]
    if name not in definitions:
        report.skip("definition unknown (not in the dataset, beside the traces, or curated)", where, name)
        return None
    for inp in fields["inputs"]:
        path = inp.pop("path")
        if inp["type"] == "safetensors":
            sha, why = blobs.resolve(path, inp["tensor_key"])
            if sha is None:
                report.skip("blob unreadable", where, why)
                return None
            store.put_bytes((blobs.root / path).read_bytes())
            inp["sha256"] = sha
    return {"uuid": fields["uuid"], "definition": name, "axes": fields["axes"], "inputs": fields["inputs"],
            "weight": 1, "source_kind": "fib_trace", "source_file": file, "model": None,
            "engine": None, "observed_at": None, "measured_axes": sorted(a["name"] for a in fields["axes"]),
            "bucketing": "exact", "notes": "flashinfer-bench tracing output; axes read from the traced call."}


def _merge(merged: dict, row: dict) -> None:
    key = (row["definition"], json.dumps(row["axes"], sort_keys=True),
           json.dumps([(i["name"], i["type"], i["value"], i["sha256"]) for i in row["inputs"]]))
    if key in merged:
        merged[key]["weight"] += 1
    else:
        merged[key] = row
