"""``fib build``: the shipped dataset, made reproducibly from the sources in this package."""

from __future__ import annotations

import uuid
from pathlib import Path

from ..dataset import Dataset
from ..hashing import solution_hash
from . import rmsnorm

#: Fixed namespace so that the same curated workload always gets the same uuid.
_NAMESPACE = uuid.UUID("5d1c43b6-6f38-4d53-9a5b-2f2f6f0c9a11")


def workload_uuid(definition: str, axes: dict[str, int], tag: str = "") -> str:
    key = definition + "|" + ",".join(f"{k}={v}" for k, v in sorted(axes.items())) + "|" + tag
    return str(uuid.uuid5(_NAMESPACE, key))


def _solution(definition: dict, name: str, language: str, source: str, author: str = "fib-data",
              description: str = "", dps: bool = True) -> dict:
    row = {
        "name": name, "definition": definition["name"], "author": author,
        "description": description, "language": language, "target_hardware": ["cpu", "cuda"],
        "entry_point": "main.py::run", "destination_passing_style": dps, "binding": None,
        "dependencies": ["torch"], "sources": [{"path": "main.py", "content": source}],
    }
    row["content_hash"] = solution_hash(row)
    return row


def _workloads(definition: dict, batch_sizes: list[int]) -> list[dict]:
    return [{
        "uuid": workload_uuid(definition["name"], {"batch_size": b}),
        "definition": definition["name"],
        "axes": [{"name": "batch_size", "value": b}],
        "inputs": [{"name": i["name"], "type": "random", "value": None, "sha256": None,
                    "tensor_key": None} for i in definition["inputs"]],
        "weight": 1, "source_kind": "curated", "source_file": None, "model": "llama-3.1-8b",
        "engine": None, "observed_at": None, "measured_axes": [], "bucketing": "exact",
        "notes": "curated default range",
    } for b in batch_sizes]


def build_dataset(root: str | Path) -> Dataset:
    ds = Dataset.create(root, card=False)
    definition = rmsnorm.DEFINITION
    ds.replace("definitions", [definition])
    ds.replace("workloads", _workloads(definition, [1, 7, 64]))
    ds.replace("solutions", [_solution(definition, "rmsnorm_h4096_torch", "python",
                                       rmsnorm.TORCH_SOLUTION, description="plain torch, fp32 math")])
    ds.write_card()
    return ds
