"""``fib build``: the shipped dataset, made reproducibly from the sources in this package.

Definitions come from ``catalog.definitions()``, workloads from ``workloads.default_workloads``
(blobs into the dataset's store), solutions from ``solutions.solutions(definitions)`` when that
module exists (the baseline solutions), else the seed torch RMSNorm solution. Rebuilding writes
the same rows and the same blobs; the evaluations table is left as it is.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..dataset import Dataset
from ..hashing import solution_hash
from . import rmsnorm
from .catalog import definitions as curated_definitions
from .workloads import PROFILES, default_workloads


def seed_solutions(definitions: list[dict]) -> list[dict]:
    """The plain-torch RMSNorm baseline, used until the curated solutions package is present."""
    target = rmsnorm.DEFINITION["name"]
    if target not in {d["name"] for d in definitions}:
        return []
    row = {
        "name": f"{target}_torch", "definition": target, "author": "fib-data",
        "description": "plain torch, fp32 math", "language": "python",
        "target_hardware": ["cpu", "cuda"], "entry_point": "main.py::run",
        "destination_passing_style": True, "binding": None, "dependencies": ["torch"],
        "sources": [{"path": "main.py", "content": rmsnorm.TORCH_SOLUTION}],
    }
    row["content_hash"] = solution_hash(row)
    return [row]


def curated_solutions(definitions: list[dict]) -> list[dict]:
    try:
        module = importlib.import_module(f"{__package__}.solutions")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.solutions":
            raise
        return seed_solutions(definitions)
    if not hasattr(module, "solutions"):  # the package is being written; keep the seed working
        return seed_solutions(definitions)
    return sorted(module.solutions(definitions), key=lambda r: r["name"])


def build_dataset(root: str | Path, profile: str = "cpu") -> Dataset:
    """Write the curated definitions, workloads (+ blobs) and solutions into ``root``; then the card."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    ds = Dataset.create(root, card=False)
    defs = curated_definitions()
    workloads = [w for d in defs for w in default_workloads(d, ds.blobs, profile)]
    ds.replace("definitions", defs)
    ds.replace("workloads", workloads)
    ds.replace("solutions", curated_solutions(defs))
    ds.write_card()
    return ds
