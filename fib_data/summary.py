"""A short overview of a dataset, computed by DuckDB over the Parquet files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .schema import TABLES

if TYPE_CHECKING:
    from .dataset import Dataset

_PER_DEFINITION = """
SELECT d.name AS definition, d.op_type,
       (SELECT count(*) FROM workloads w WHERE w.definition = d.name) AS workloads,
       (SELECT coalesce(sum(weight), 0) FROM workloads w WHERE w.definition = d.name) AS weight,
       (SELECT count(*) FROM solutions s WHERE s.definition = d.name) AS solutions,
       (SELECT count(*) FROM evaluations e WHERE e.definition = d.name) AS evaluations,
       (SELECT count(*) FROM evaluations e WHERE e.definition = d.name AND e.status = 'PASSED') AS passed
FROM definitions d ORDER BY d.op_type, d.name
"""


def summarize(ds: "Dataset") -> list[tuple[str, list[str], list[tuple]]]:
    con = ds.connect()
    counts = [(t, con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES]
    counts.append(("blobs", len(ds.blobs.all())))
    cur = con.execute(_PER_DEFINITION)
    cols = [d[0] for d in cur.description]
    return [(f"{ds.root}", ["table", "rows"], counts), ("per definition", cols, cur.fetchall())]
