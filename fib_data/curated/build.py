"""``fib build``: the shipped dataset, made reproducibly from the sources in this package.

Definitions come from ``catalog.definitions()``, workloads from ``workloads.default_workloads``
(blobs into the dataset's store), the baseline solutions from ``solutions.solutions(definitions)``.
Rebuilding writes the same rows and the same blobs; the evaluations table is left as it is.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import Dataset
from .catalog import definitions as curated_definitions
from .solutions import solutions as curated_solutions
from .workloads import PROFILES, default_workloads


def build_dataset(root: str | Path, profile: str = "cpu") -> Dataset:
    """Write the curated definitions, workloads (+ blobs) and solutions into ``root``; then the card."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    ds = Dataset.create(root, card=False)
    defs = curated_definitions()
    workloads = [w for d in defs for w in default_workloads(d, ds.blobs, profile)]
    ds.replace("definitions", defs)
    ds.replace("workloads", workloads)
    ds.replace("solutions", sorted(curated_solutions(defs), key=lambda r: r["name"]))
    ds.write_card()
    return ds
