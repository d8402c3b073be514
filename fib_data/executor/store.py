"""Evaluation rows written as they finish, consolidated into one part file per run.

    <dataset>/runs/<run_id>/manifest.json        what ran, with which options, and how it ended
    <dataset>/runs/<run_id>/batch-*.parquet      finished rows, one atomic file per write
    <dataset>/data/evaluations/run-<run_id>.parquet   the consolidated part file

A finished evaluation is reported only once it is on disk (atomically), so ``kill -9`` loses
nothing reported. One writer thread per run writes whatever rows are pending as one batch file,
so workers never wait on a write and batches grow when writes are slower than evaluations. The
next start consolidates any run left unfinished, and rows whose key (solution_hash,
workload_uuid, environment_hash) is already stored are never written again.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid as uuidlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

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
        self.tables: list[pa.Table] = []   # what this run wrote, consolidated without re-reading
        self.paths: list[Path] = []
        self.writer: BatchWriter | None = None

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
            path = self.dir / f"batch-{self.written:06d}-{uuidlib.uuid4().hex[:6]}.parquet"
            write_parquet(path, arrow)
            self.written += arrow.num_rows
            self.tables.append(arrow)
            self.paths.append(path)

    def open_writer(self, on_written: Callable[[dict], None] | None = None) -> "BatchWriter":
        """Start the run's writer thread: ``put`` rows, ``close`` flushes and raises its error."""
        self.writer = BatchWriter(self.add, on_written)
        return self.writer

    def finish(self, **summary: Any) -> Path | None:
        if self.writer is not None:
            self.writer.close()
        with self.lock:
            arrow = pa.concat_tables(self.tables) if self.tables else None
            path = _fold(self.ds, self.run_id, arrow, self.paths)
        self.manifest.update(status="complete", finished_at=datetime.now(timezone.utc).isoformat(),
                             part_file=str(path.relative_to(self.ds.root)) if path else None, **summary)
        self._write_manifest()
        return path


def batches(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.glob("batch-*.parquet") if not p.name.startswith("."))


_END = object()


class BatchWriter:
    """A thread that writes pending rows as one batch each time, then reports them.

    ``put`` never waits on the disk. A row reaches ``on_written`` only after ``write`` returned
    (the batch is on disk). After a failed write the thread stops: ``put`` and ``close`` raise
    that error, so it cannot be missed and nothing waits on a dead writer.
    """

    def __init__(self, write: Callable[[list[dict]], None], on_written: Callable[[dict], None] | None):
        self.write, self.on_written = write, on_written
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.closed = False
        self.thread = threading.Thread(target=self._drain, daemon=True, name="fib-bench-writer")
        self.thread.start()

    def put(self, row: dict) -> None:
        self._raise()
        if self.closed:
            raise RuntimeError("the run's writer is closed; this row was not written")
        self.queue.put(row)

    def close(self) -> None:
        """Write every row put so far, stop the thread, raise its error if it had one."""
        if not self.closed:
            self.closed = True
            self.queue.put(_END)
        self.thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"writing evaluation rows failed: {self.error!r}") from self.error

    def _drain(self) -> None:
        end = False
        while not end:
            rows = [self.queue.get()]
            while not self.queue.empty():
                rows.append(self.queue.get())
            end = any(r is _END for r in rows)
            rows = [r for r in rows if r is not _END]
            try:
                if rows:
                    self.write(rows)
                    for row in rows:
                        if self.on_written:
                            self.on_written(row)
            except BaseException as exc:
                self.error = exc
                return


def consolidate(ds: Dataset, run_id: str) -> Path | None:
    """Fold a run's batch files into ``data/evaluations/run-<run_id>.parquet`` (idempotent)."""
    files = batches(ds.root / "runs" / run_id)
    arrow = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
    return _fold(ds, run_id, arrow, files)


def _fold(ds: Dataset, run_id: str, arrow: pa.Table | None, files: list[Path]) -> Path | None:
    """Write ``arrow`` (the rows of the batch ``files``) as the run's part file, leaving out keys
    already stored, then delete the batches."""
    target = ds.table_dir("evaluations") / f"run-{run_id}.parquet"
    if target.exists():  # a crash after the rename: the batches are already in the part file
        for f in files:
            f.unlink()
        return target
    if arrow is None:
        return None
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


def import_runs(ds: Dataset, paths: Iterable[Path]) -> list[dict]:
    """Add evaluations part files made elsewhere (another machine's runs, e.g. the committed device
    runs under ``benchmarks/results/``) to ``ds``, one part file each, keeping their run ids.

    Every row is checked against the schema (a bad file raises ``DataError`` naming it, before
    anything is written). Rows whose solution or workload this dataset does not hold (built from
    other sources, or an older build) are left out, and so are keys already stored: importing
    twice adds nothing. Newest runs go first, so of two runs with the same key the newer is kept,
    as the leaderboard's newest-per-key rule would pick. Returns one summary per file."""
    paths = sorted((Path(p) for p in paths), key=lambda p: p.name, reverse=True)
    tables = [to_arrow("evaluations", pq.read_table(p), file=str(p)) for p in paths]  # all checked first
    held = (set(ds.read("solutions", columns=["content_hash"])["content_hash"].to_pylist()),
            set(ds.read("workloads", columns=["uuid"])["uuid"].to_pylist()))
    stored = ds.keys("evaluations")
    out = []
    for path, arrow in zip(paths, tables):
        known, keep = _importable(arrow, *held, stored)
        name = path.name if path.name.startswith("run-") else f"run-{new_run_id()}.parquet"
        if (ds.table_dir("evaluations") / name).exists():  # part files are never rewritten
            name = f"run-{new_run_id()}.parquet"
        part = ds.append("evaluations", arrow.take(keep), name=name, check_keys=False) if keep else None
        out.append({"file": str(path), "rows": arrow.num_rows, "imported": len(keep),
                    "unknown_solution_or_workload": arrow.num_rows - known,
                    "already_stored": known - len(keep), "part_file": str(part) if part else None})
    return out


def _importable(arrow: pa.Table, solutions: set, workloads: set, stored: set) -> tuple[int, list[int]]:
    """How many rows name a solution and workload the dataset holds, and which of those are new
    (``stored`` grows by them, so a later file cannot add the same key)."""
    known, keep = 0, []
    rows = zip(arrow["solution_hash"].to_pylist(), arrow["workload_uuid"].to_pylist(), _keys(arrow))
    for i, (solution, workload, key) in enumerate(rows):
        if solution in solutions and workload in workloads:
            known += 1
            if key not in stored:
                keep.append(i)
                stored.add(key)
    return known, keep
