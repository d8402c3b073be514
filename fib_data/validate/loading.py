"""Rows of a dataset as the checks see them: each with the part file and row it came from.

Part files are read one at a time and cast to the schema; a file that cannot be cast is a
problem of its own (its rows are left out of the other checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..dataset import Dataset
from ..errors import Problem
from ..rows import check_values
from ..schema import schema_of


@dataclass(frozen=True)
class Row:
    table: str
    file: str
    index: int
    data: dict

    def problem(self, field: str, message: str, value: object = None) -> Problem:
        return Problem(self.table, self.file, self.index, field, message, value)


def _rel(ds: Dataset, path) -> str:
    return path.relative_to(ds.root).as_posix()


def part_tables(ds: Dataset, table: str, problems: list[Problem],
                columns: list[str] | None = None) -> Iterator[tuple[str, pa.Table]]:
    """(file, table cast to the schema) for each readable part file; others become problems."""
    schema = schema_of(table)
    target = pa.schema([schema.field(c) for c in columns]) if columns else schema
    for path in ds.files(table):
        rel = _rel(ds, path)
        try:
            arrow = pq.read_table(path, columns=columns)
            missing = [f.name for f in target if f.name not in arrow.column_names]
            if missing:
                problems.append(Problem(table, rel, None, ",".join(missing), "column missing"))
                continue
            yield rel, arrow.select(target.names).cast(target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
            problems.append(Problem(table, rel, None, "*", f"unreadable or off-schema: {exc}"))


def load_rows(ds: Dataset, table: str, problems: list[Problem]) -> list[Row]:
    """Every row of a small table, after the null and enum checks of the schema."""
    rows = []
    for rel, arrow in part_tables(ds, table, problems):
        problems.extend(check_values(table, arrow, rel))
        rows.extend(Row(table, rel, i, r) for i, r in enumerate(arrow.to_pylist()))
    return rows


def iter_rows(ds: Dataset, table: str, problems: list[Problem],
              batch_size: int = 50_000) -> Iterator[Row]:
    """Every row of a possibly large table, a batch at a time."""
    for rel, arrow in part_tables(ds, table, problems):
        first = 0
        for batch in arrow.to_batches(max_chunksize=batch_size):
            part = pa.Table.from_batches([batch])
            problems.extend(check_values(table, part, rel, first))
            for i, r in enumerate(part.to_pylist()):
                yield Row(table, rel, first + i, r)
            first += batch.num_rows
