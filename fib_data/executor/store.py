"""Evaluation rows written as they finish, consolidated into one part file per run.

    <dataset>/runs/<run_id>/manifest.json        what ran, with which options, and how it ended
    <dataset>/runs/<run_id>/batch-*.parquet      finished rows, one atomic file per write
    <dataset>/data/evaluations/run-<run_id>.parquet   the consolidated part file

Each finished evaluation is on disk (atomically) before the next one is reported, so ``kill -9``
loses nothing finished. The next start consolidates any run left unfinished, and rows whose key
(solution_hash, workload_uuid, environment_hash) is already stored are never written again.
"""

from __future__ import annotations

import json
import threading
import uuid as uuidlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from .. import atomic
from ..dataset import Dataset, write_parquet
from ..rows import to_arrow
from ..schema import KEYS

KEY = KEYS["evaluations"]


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuidlib.uuid4().hex[:6]


def _keys(arrow: pa.Table) -> list[tuple]:
    return list(zip(*(arrow[k].to_pylist() for k in KEY)))


class RunStore:
    def __init__(self, ds: Dataset, run_id: str):
        self.ds, self.run_id = ds, run_id
        self.dir = ds.root / "runs" / run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.written = 0
        self.manifest: dict[str, Any] = {}

    def start(self, **manifest: Any) -> None:
        self.manifest = {"run_id": self.run_id, "status": "running",
                         "started_at": datetime.now(timezone.utc).isoformat(), **manifest}
        self._write_manifest()

    def _write_manifest(self) -> None:
        atomic.write_text(self.dir / "manifest.json", json.dumps(self.manifest, indent=2, default=str))

    def add(self, rows: Iterable[dict]) -> None:
        arrow = to_arrow("evaluations", list(rows), file=f"run {self.run_id}")
        if arrow.num_rows == 0:
            return
        with self.lock:
            name = f"batch-{self.written:06d}-{uuidlib.uuid4().hex[:6]}.parquet"
            write_parquet(self.dir / name, arrow)
            self.written += arrow.num_rows

    def finish(self, **summary: Any) -> Path | None:
        path = consolidate(self.ds, self.run_id)
        self.manifest.update(status="complete", finished_at=datetime.now(timezone.utc).isoformat(),
                             part_file=str(path.relative_to(self.ds.root)) if path else None, **summary)
        self._write_manifest()
        return path


def batches(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.glob("batch-*.parquet") if not p.name.startswith("."))


def consolidate(ds: Dataset, run_id: str) -> Path | None:
    """Fold a run's batches into ``data/evaluations/run-<run_id>.parquet`` (idempotent)."""
    run_dir = ds.root / "runs" / run_id
    target = ds.table_dir("evaluations") / f"run-{run_id}.parquet"
    files = batches(run_dir)
    if target.exists():  # a crash after the rename: the batches are already in the part file
        for f in files:
            f.unlink()
        return target
    if not files:
        return None
    arrow = pa.concat_tables([pq.read_table(f) for f in files])
    stored = ds.keys("evaluations")
    keep, seen = [], set()
    for i, key in enumerate(_keys(arrow)):
        if key not in stored and key not in seen:
            keep.append(i)
            seen.add(key)
    if keep:
        write_parquet(target, to_arrow("evaluations", arrow.take(keep)))
    for f in files:
        f.unlink()
    return target if keep else None


def recover(ds: Dataset) -> list[str]:
    """Consolidate every run a crash left with batches; returns their ids."""
    root = ds.root / "runs"
    done = []
    for run_dir in sorted(root.iterdir()) if root.is_dir() else []:
        if run_dir.is_dir() and batches(run_dir):
            consolidate(ds, run_dir.name)
            _mark(run_dir, "recovered")
            done.append(run_dir.name)
    return done


def _mark(run_dir: Path, status: str) -> None:
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"run_id": run_dir.name}
    if manifest.get("status") != "complete":
        manifest["status"] = status
        atomic.write_text(path, json.dumps(manifest, indent=2))


def done_keys(ds: Dataset) -> set[tuple]:
    return ds.keys("evaluations")

