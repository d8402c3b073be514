"""The SQL files under ``queries/``, run by DuckDB over a dataset and returned as polars frames.

Each ``queries/<name>.sql`` declares its parameters as lines of the form

    SET VARIABLE name = coalesce(getvariable('name'), DEFAULT); -- @param what it does

so the same file runs unchanged in the DuckDB shell (defaults apply unless the variable was set
before), from ``fib query`` and from :func:`run_query`. Files starting with ``_`` are helpers:
``_views.sql`` (the four tables, for the shell) and ``_macros.sql`` (shared table macros, run on
every connection here).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

_PARAM = re.compile(r"^SET VARIABLE (\w+) = coalesce\(getvariable\('\1'\), (.+)\);\s*-- @param (.*)$",
                    re.MULTILINE)


@dataclass(frozen=True)
class Param:
    name: str
    default: str  # a SQL expression with an explicit type, e.g. NULL::VARCHAR, [0, 1]::DOUBLE[]
    doc: str


@dataclass(frozen=True)
class Query:
    name: str
    path: Path
    text: str
    summary: str
    params: tuple[Param, ...] = field(default_factory=tuple)


def query_dir() -> Path:
    """The repo's ``queries/`` in a checkout, else the copy packaged as ``fib_data/queries``."""
    repo = Path(__file__).resolve().parent.parent / "queries"
    if repo.is_dir():
        return repo
    return Path(str(resources.files("fib_data").joinpath("queries")))


def list_queries() -> list[Query]:
    """Every runnable query (helpers starting with ``_`` excluded), sorted by name."""
    return [load_query(p.stem) for p in sorted(query_dir().glob("*.sql")) if not p.stem.startswith("_")]


def load_query(name: str) -> Query:
    path = query_dir() / f"{name}.sql"
    if not re.fullmatch(r"\w+", name) or not path.is_file():
        known = ", ".join(p.stem for p in sorted(query_dir().glob("[!_]*.sql")))
        raise ValueError(f"unknown query {name!r}; known: {known}")
    text = path.read_text()
    summary = " ".join(_first_paragraph(text)).removeprefix(f"{name}:").strip()
    params = tuple(Param(n, d.strip(), doc.strip()) for n, d, doc in _PARAM.findall(text))
    return Query(name, path, text, summary, params)


def _first_paragraph(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        body = line[2:].strip() if line.startswith("--") else ""
        if not body:
            break
        lines.append(body)
    return lines


def connect(dataset_or_connection: Any):
    """A DuckDB connection with the four views and the shared macros.

    Accepts a dataset folder, a :class:`~fib_data.dataset.Dataset`, or a DuckDB connection whose
    tables (or views) ``definitions``, ``workloads``, ``solutions``, ``evaluations`` exist.
    """
    from .dataset import Dataset

    if isinstance(dataset_or_connection, (str, os.PathLike)):
        dataset_or_connection = Dataset(dataset_or_connection)
    con = dataset_or_connection.connect() if isinstance(dataset_or_connection, Dataset) else dataset_or_connection
    try:
        con.execute("SET enable_progress_bar = false")  # it would write to stdout
    except Exception:  # in Jupyter without ipywidgets DuckDB refuses to change the setting
        pass
    con.execute((query_dir() / "_macros.sql").read_text())
    return con


def run_query(dataset_or_connection: Any, name: str, params: dict[str, Any] | None = None):
    """Run ``queries/<name>.sql`` and return a polars DataFrame.

    ``params`` maps parameter names to Python values (str, number, list) or, as on the command
    line, strings (lists as comma-separated text); each is cast to its default's SQL type.
    Parameters not given take their defaults, even on a connection used before.
    """
    query = load_query(name)
    con = connect(dataset_or_connection)
    set_params(con, query, params or {})
    return _frame(con.sql(query.text))


def run_sql(dataset_or_connection: Any, sql: str):
    """Ad-hoc SQL over the four views (and the shared macros) as a polars DataFrame."""
    return _frame(connect(dataset_or_connection).sql(sql))


def set_params(con, query: Query, params: dict[str, Any]) -> None:
    declared = {p.name: p for p in query.params}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(f"query {query.name!r} has no parameter {', '.join(unknown)}; "
                         f"parameters: {', '.join(declared) or 'none'}")
    for p in query.params:
        if p.name not in params or params[p.name] is None:
            con.execute(f"RESET VARIABLE {p.name}")
            continue
        sql_type = con.execute(f"SELECT typeof({p.default})").fetchone()[0]
        value = params[p.name]
        if sql_type.endswith("[]") and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        try:
            con.execute(f"SET VARIABLE {p.name} = CAST(? AS {sql_type})", [value])
        except Exception as exc:  # duckdb's conversion errors, reported against the parameter
            raise ValueError(f"query {query.name!r}: parameter {p.name} takes {sql_type}, "
                             f"not {value!r} ({exc})") from None


def _frame(relation):
    import polars as pl

    if relation is None:  # a statement that returns nothing (CREATE, SET, ...)
        return pl.DataFrame()
    return pl.from_arrow(relation.to_arrow_table())


def diff_datasets(a_path: str | os.PathLike, b_path: str | os.PathLike):
    """``snapshot_diff`` between two dataset folders: ``a`` is attached as old, ``b`` as new."""
    import duckdb

    from .dataset import Dataset
    from .sql import attach

    con = duckdb.connect()
    attach(con, Dataset(a_path), schema="old")
    attach(con, Dataset(b_path), schema="new")
    return run_query(con, "snapshot_diff")


FORMATS = ("table", "csv", "json", "parquet")


def write_frame(frame, fmt: str, out: str | os.PathLike | None = None) -> str | None:
    """Write a result as csv/json/parquet to ``out``, or return csv/json text when ``out`` is None."""
    if fmt not in FORMATS[1:]:
        raise ValueError(f"format must be one of {', '.join(FORMATS[1:])}, not {fmt!r}")
    if fmt == "parquet":
        if out is None:
            raise ValueError("--format parquet needs --out FILE")
        frame.write_parquet(out)
        return None
    if fmt == "csv":
        import polars as pl

        nested = [c for c, t in frame.schema.items() if t.is_nested()]
        frame = frame.with_columns(pl.col(c).map_elements(str, return_dtype=pl.String) for c in nested)
        text = frame.write_csv()
    else:
        text = frame.write_json()
    if out is None:
        return text
    Path(out).write_text(text)
    return None
