"""Commit an ingest atomically: stage everything, then rename parts into place, workloads last.

Blobs are written into a staging store under ``<dataset>/.ingest-<id>/`` while rows are built;
nothing in the dataset changes until every row is built and validated against the schema. The
commit then (1) moves the blobs the new rows reference into ``blobs/`` (content-addressed, so a
blob left behind by a crash is harmless), (2) renames the definitions part into
``data/definitions/``, and (3) renames the workloads part into ``data/workloads/``, one rename
that makes the ingest visible. A failure before (3) leaves at most unreferenced blobs and
definitions without workloads, never a workload that points at something missing.
"""

from __future__ import annotations

import os
import shutil
import uuid as uuidlib
from pathlib import Path

from ..blobs import BlobStore
from ..dataset import Dataset, new_part_name, write_parquet
from ..rows import to_arrow


class Staging:
    def __init__(self, ds: Dataset):
        self.ds = ds
        self.root = ds.root / f".ingest-{uuidlib.uuid4().hex[:8]}"
        self.store = BlobStore(self.root / "blobs")

    def __enter__(self) -> "Staging":
        self.root.mkdir()
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def commit(self, definitions: list[dict], workloads: list[dict]) -> list[Path]:
        """Validate both tables, then make them visible (definitions first, workloads last)."""
        parts = []
        for table, rows in (("definitions", definitions), ("workloads", workloads)):
            if not rows:
                continue
            arrow = to_arrow(table, rows, file=f"ingest {table}")
            self.ds._check_new_keys(table, arrow)
            staged = self.root / f"{table}.parquet"
            write_parquet(staged, arrow)
            parts.append((staged, self.ds.table_dir(table) / new_part_name("ingest")))
        self._move_blobs(workloads)
        for staged, target in parts:
            os.replace(staged, target)
        return [target for _, target in parts]

    def _move_blobs(self, workloads: list[dict]) -> None:
        shas = {i["sha256"] for w in workloads for i in w["inputs"] if i.get("sha256")}
        for sha in sorted(shas):
            if self.ds.blobs.exists(sha):
                continue
            source = self.store.path_for(sha)
            if not source.is_file():
                raise FileNotFoundError(f"blob {sha} was referenced but never staged")
            target = self.ds.blobs.path_for(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
