"""DuckDB over the dataset folder: one view per table, reading the Parquet part files in place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .schema import TABLES, schema_of

if TYPE_CHECKING:
    from .dataset import Dataset


def view_sql(ds: "Dataset", table: str) -> str | None:
    """The CREATE VIEW statement for a table, or None when it has no part file yet."""
    files = ds.files(table)
    if not files:
        return None
    listing = ", ".join("'" + str(f.resolve()).replace("'", "''") + "'" for f in files)
    return f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet([{listing}], union_by_name=true)"


def connect(ds: "Dataset", database: str = ":memory:"):
    import duckdb

    con = duckdb.connect(database)
    attach(con, ds)
    return con


def attach(con, ds: "Dataset", schema: str | None = None) -> None:
    """Create the four views (in ``schema`` if given, so two snapshots can sit side by side)."""
    if schema:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for table in TABLES:
        name = f"{schema}.{table}" if schema else table
        stmt = view_sql(ds, table)
        if stmt is None:
            # An empty table still needs its columns so queries over it plan and return 0 rows.
            empty = schema_of(table).empty_table()
            tmp = f"__empty_{schema or 'main'}_{table}"
            con.register(tmp, empty)
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {tmp}")
        else:
            con.execute(stmt.replace(f"VIEW {table} AS", f"VIEW {name} AS", 1))
