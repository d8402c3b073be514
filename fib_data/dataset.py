"""The dataset folder: Parquet part files per table, a blob store, a dataset card.

    <root>/README.md                  dataset card (YAML configs for the four tables)
    <root>/data/<table>/*.parquet     part files; evaluations get one file per run
    <root>/blobs/<sha[:2]>/<sha>.safetensors

Every write is a new file renamed into place, so readers (DuckDB, ``datasets``) never see a
partial file and a failed write leaves the folder as it was.
"""

from __future__ import annotations

import os
import shutil
import uuid as uuidlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from . import atomic
from .blobs import BlobStore
from .errors import DataError, Problem
from .rows import duplicate_keys, to_arrow
from .schema import KEYS, TABLES, schema_of

DEFAULT_DATASET = "flashinfer-bench"
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 6}


def new_part_name(prefix: str = "part") -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{prefix}-{stamp}-{uuidlib.uuid4().hex[:8]}.parquet"


def write_parquet(path: str | os.PathLike, arrow: pa.Table) -> None:
    with atomic.atomic_path(path) as tmp:
        if arrow.num_rows == 0:
            # No row group at all: readers such as `datasets` choke on an empty row group.
            pq.ParquetWriter(tmp, arrow.schema, **PARQUET_OPTIONS).close()
        else:
            pq.write_table(arrow, tmp, **PARQUET_OPTIONS)


class Dataset:
    """A dataset folder. ``Dataset.create`` makes one; ``Dataset(path)`` opens an existing one."""

    def __init__(self, root: str | os.PathLike = DEFAULT_DATASET):
        self.root = Path(root)
        if not (self.root / "data").is_dir():
            raise FileNotFoundError(f"{self.root} is not a dataset folder (no data/ inside); "
                                    f"create one with Dataset.create or `fib build`")
        self.blobs = BlobStore(self.root / "blobs")

    @classmethod
    def create(cls, root: str | os.PathLike = DEFAULT_DATASET, card: bool = True) -> "Dataset":
        root = Path(root)
        for table in TABLES:
            (root / "data" / table).mkdir(parents=True, exist_ok=True)
        (root / "blobs").mkdir(exist_ok=True)
        ds = cls(root)
        for table in TABLES:
            ds._ensure_part(table)
        if card:
            ds.write_card()
        return ds

    @property
    def name(self) -> str:
        return self.root.resolve().name

    # ---- reading -------------------------------------------------------------------------
    def table_dir(self, table: str) -> Path:
        schema_of(table)
        return self.root / "data" / table

    def files(self, table: str) -> list[Path]:
        """Visible part files; temp files (leading dot) are never listed."""
        return sorted(p for p in self.table_dir(table).glob("*.parquet") if not p.name.startswith("."))

    def read(self, table: str, columns: list[str] | None = None) -> pa.Table:
        schema = schema_of(table)
        files = self.files(table)
        if not files:
            empty = schema.empty_table()
            return empty.select(columns) if columns else empty
        parts = [pq.read_table(f, columns=columns) for f in files]
        target = pa.schema([schema.field(c) for c in columns]) if columns else schema
        return pa.concat_tables([p.cast(target) for p in parts])

    def polars(self, table: str, lazy: bool = False):
        import polars as pl

        files = self.files(table)
        if not files:
            frame = pl.from_arrow(schema_of(table).empty_table())
            return frame.lazy() if lazy else frame
        scan = pl.scan_parquet([str(f) for f in files])
        return scan if lazy else scan.collect()

    def count(self, table: str) -> int:
        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files(table))

    def keys(self, table: str) -> set[tuple]:
        arrow = self.read(table, columns=list(KEYS[table]))
        return set(zip(*(arrow[k].to_pylist() for k in KEYS[table])))

    def connect(self, database: str = ":memory:"):
        """A DuckDB connection with the four tables as views over the part files."""
        from .sql import connect

        return connect(self, database)

    # ---- writing -------------------------------------------------------------------------
    def append(self, table: str, rows: Iterable[dict[str, Any]] | pa.Table,
               name: str | None = None, check_keys: bool = True) -> Path | None:
        """Validate rows and write them as one new part file. Returns its path (None if no rows)."""
        arrow = to_arrow(table, rows, file=f"append to {table}")
        if arrow.num_rows == 0:
            return None
        if check_keys:
            self._check_new_keys(table, arrow)
        path = self.table_dir(table) / (name or new_part_name())
        if path.exists():
            raise FileExistsError(f"{path} exists; part files are never rewritten")
        write_parquet(path, arrow)
        return path

    def replace(self, table: str, rows: Iterable[dict[str, Any]] | pa.Table) -> None:
        """Swap the table's whole content for ``rows`` (used by ``fib build``), atomically."""
        arrow = to_arrow(table, rows, file=f"replace {table}")
        _raise_on_duplicates(table, arrow, f"replace {table}")
        final = self.table_dir(table)
        staging = final.with_name(f".{table}.new-{uuidlib.uuid4().hex[:8]}")
        old = final.with_name(f".{table}.old-{uuidlib.uuid4().hex[:8]}")
        staging.mkdir(parents=True)
        try:
            write_parquet(staging / new_part_name(), arrow)
            os.replace(final, old)
            os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)

    def _ensure_part(self, table: str) -> None:
        # An empty part file keeps every table loadable (datasets and DuckDB need one file).
        if not self.files(table):
            write_parquet(self.table_dir(table) / "part-00000000-empty.parquet",
                          schema_of(table).empty_table())

    def _check_new_keys(self, table: str, arrow: pa.Table) -> None:
        _raise_on_duplicates(table, arrow, f"append to {table}")
        existing = self.keys(table)
        key_cols = KEYS[table]
        new = zip(*(arrow[k].to_pylist() for k in key_cols))
        problems = [Problem(table, f"append to {table}", i, "+".join(key_cols),
                            "key already stored in the dataset", k[0] if len(k) == 1 else k)
                    for i, k in enumerate(new) if k in existing]
        if problems:
            raise DataError(problems, f"append to {table}")

    # ---- card ----------------------------------------------------------------------------
    def write_card(self, **extra: Any) -> Path:
        from .card import render_card

        path = self.root / "README.md"
        atomic.write_text(path, render_card(self, **extra))
        return path

    def summary(self) -> dict[str, int]:
        return {t: self.count(t) for t in TABLES} | {"blobs": len(self.blobs.all())}


def _raise_on_duplicates(table: str, arrow: pa.Table, where: str) -> None:
    dups = duplicate_keys(table, arrow)
    if dups:
        raise DataError([Problem(table, where, rows[1], "+".join(KEYS[table]),
                                 f"duplicate key (also row {rows[0]})", key[0] if len(key) == 1 else key)
                         for key, rows in dups.items()], where)


def open_dataset(root: str | os.PathLike = DEFAULT_DATASET) -> Dataset:
    return Dataset(root)
