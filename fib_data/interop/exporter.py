"""``fib export-json``: a dataset folder -> the FlashInfer Trace JSON layout.

    definitions/<name>.json   solutions/<name>.json   workloads/<definition>.jsonl
    traces/<definition>.jsonl blob/workloads/<definition>/<sha256>.safetensors

The folder is written beside ``out`` and renamed onto it at the end, so a failed export leaves
nothing behind. Evaluations are streamed a batch at a time, so memory stays flat on big datasets.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid as uuidlib
from pathlib import Path

import pyarrow.parquet as pq

from ..dataset import Dataset
from ..errors import DataError, Problem
from .write_upstream import (blob_path, definition_json, solution_json, trace_line,
                             workload_json, workload_line)


def _file_name(table: str, name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise DataError([Problem(table, "export", None, "name",
                                 "cannot be used as a file name", name)])
    return name


def export_json(dataset: Dataset | str | os.PathLike, out: str | os.PathLike) -> dict[str, int]:
    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    tmp = out.parent / f".{out.name}.exporting-{uuidlib.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        counts = _write_all(ds, tmp)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
        return counts
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_all(ds: Dataset, root: Path) -> dict[str, int]:
    counts = {}
    definitions = ds.read("definitions").to_pylist()
    for row in definitions:
        _write_json(root / "definitions" / f"{_file_name('definitions', row['name'])}.json",
                    definition_json(row))
    counts["definitions"] = len(definitions)
    solutions = ds.read("solutions").to_pylist()
    for row in solutions:
        _write_json(root / "solutions" / f"{_file_name('solutions', row['name'])}.json",
                    solution_json(row))
    counts["solutions"] = len(solutions)
    workload_text = _write_workloads(ds, root)
    counts["workloads"] = len(workload_text)
    counts["traces"] = _write_traces(ds, root, workload_text)
    return counts


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_workloads(ds: Dataset, root: Path) -> dict[str, str]:
    """Write workloads/<def>.jsonl and the blobs; return uuid -> workload JSON for the traces."""
    lines: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    for row in ds.read("workloads").to_pylist():
        definition = _file_name("workloads", row["definition"])
        lines.setdefault(definition, []).append(workload_line(row))
        texts[row["uuid"]] = json.dumps(workload_json(row))
        for inp in row["inputs"]:
            if inp["type"] == "safetensors":
                target = root / blob_path(definition, inp["sha256"])
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(ds.blobs.get_bytes(inp["sha256"]))
    for definition, rows in lines.items():
        path = root / "workloads" / f"{definition}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return texts


def _write_traces(ds: Dataset, root: Path, workload_text: dict[str, str]) -> int:
    handles: dict[str, object] = {}
    count = 0
    try:
        for part in ds.files("evaluations"):
            for batch in pq.ParquetFile(part).iter_batches(batch_size=20_000):
                for row in batch.to_pylist():
                    definition = _file_name("evaluations", row["definition"])
                    fh = handles.get(definition)
                    if fh is None:
                        path = root / "traces" / f"{definition}.jsonl"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        fh = handles[definition] = open(path, "w", encoding="utf-8")
                    text = workload_text.get(row["workload_uuid"])
                    if text is None:
                        raise DataError([Problem("evaluations", part.name, count, "workload_uuid",
                                                 "no such workload", row["workload_uuid"])])
                    fh.write(trace_line(row, text) + "\n")
                    count += 1
    finally:
        for fh in handles.values():
            fh.close()
    return count
