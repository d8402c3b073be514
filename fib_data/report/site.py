"""The site: index.html (leaderboards, fast_p plot, language trade-offs) and one page per
definition (its leaderboard, workloads, evaluations), written to a staging folder and swapped
into place so a reader never sees half a site."""

from __future__ import annotations

import os
import shutil
import uuid
from html import escape
from importlib import resources
from pathlib import Path

import polars as pl

from ..query import connect, run_query, run_sql
from .html import page, slug, table
from .plots import fast_p_svg, latency_svg

FAST_P_GRID = [round(0.1 * i, 1) for i in range(31)]  # p = 0 .. 3: a smooth curve
MAX_EVALUATIONS = 2000  # per definition page; the full list is one `fib query evaluations` away
INDEX_TOP = 10  # leaderboard rows per definition and hardware on the index; all on its own page
PLOT_TOP = 6  # solutions drawn in a definition's latency plot (the best ranked)
BOARD_COLUMNS = ["rank", "solution", "author", "language", "geomean_speedup", "coverage",
                 "correctness_rate", "passed", "evaluated", "flagged"]


def build_report(ds, out: str | os.PathLike) -> Path:
    """Write the site for a Dataset into ``out`` (replaced whole); returns the index path."""
    out = Path(out)
    staging = out.with_name(f".{out.name}.new-{uuid.uuid4().hex[:8]}")
    (staging / "definitions").mkdir(parents=True)
    try:
        _write_site(ds, staging)
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        if out.exists():
            os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "index.html"


def _write_site(ds, root: Path) -> None:
    con = connect(ds)
    assets = resources.files(__package__).joinpath("static")
    (root / "assets").mkdir()
    for name in ("sort.js", "style.css"):
        (root / "assets" / name).write_text(assets.joinpath(name).read_text())
    board = run_query(con, "leaderboard")
    definitions = run_sql(con, "SELECT name, op_type, description, axes FROM definitions ORDER BY op_type, name")
    (root / "index.html").write_text(_index(ds, con, board, definitions))
    # One run of each per-definition query, split here: a query per page would re-read every evaluation.
    parts = {"definition_workloads": _by_definition(run_query(con, "definition_workloads")),
             "evaluations": _by_definition(run_query(con, "evaluations", {"per_definition": MAX_EVALUATIONS,
                                                                          "max_rows": 2**62})),
             "roofline": _by_definition(run_query(con, "roofline"))}
    for d in definitions.iter_rows(named=True):
        tables = {name: frames.get(d["name"]) for name, frames in parts.items()}
        (root / "definitions" / f"{slug(d['name'])}.html").write_text(_definition_page(d, board, tables))


def _by_definition(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {key[0]: part for key, part in frame.partition_by("definition", as_dict=True).items()}


def _definition_link(prefix: str):
    return lambda row: f"{prefix}{slug(row['definition'])}.html"


def _leaderboards(board: pl.DataFrame, prefix: str, heading: bool) -> str:
    parts = []
    for (definition, hardware), rows in board.group_by(["definition", "hardware"], maintain_order=True):
        title = f'<a class="definition" href="{prefix}{escape(slug(definition))}.html">{escape(definition)}</a>'
        if heading:
            parts.append(f"<h3>{title} <span class='muted'>on {escape(hardware)}</span></h3>")
        else:
            parts.append(f"<h3>{escape(hardware)}</h3>")
        parts.append(table(rows, BOARD_COLUMNS, attrs={"data-definition": definition, "data-hardware": hardware},
                           css="sortable leaderboard", highlight=lambda r: r["rank"] == 1))
    return "\n".join(parts) or '<p class="muted">no evaluations yet</p>'


def _index(ds, con, board: pl.DataFrame, definitions: pl.DataFrame) -> str:
    fast = run_query(con, "fast_p", {"thresholds": FAST_P_GRID})
    languages = run_query(con, "language_tradeoffs")
    counts = run_sql(con, """SELECT (SELECT count(*) FROM definitions) AS definitions,
        (SELECT count(*) FROM workloads) AS workloads, (SELECT count(*) FROM solutions) AS solutions,
        (SELECT count(*) FROM evaluations) AS evaluations""")
    defs = definitions.select("name", "op_type").rename({"name": "definition"})
    body = [
        "<h2>Contents</h2>", table(counts, css="counts"),
        table(defs, links={"definition": _definition_link("definitions/")}, attrs={"id": "definitions"}),
        "<h2>Leaderboards</h2>",
        "<p>Solutions ranked by geometric-mean speedup over the reference on the workloads they pass; "
        "coverage = passed / all workloads of the definition. Only the newest evaluation of each "
        f"solution, workload and hardware counts. The top {INDEX_TOP} per definition and hardware; "
        "the definition pages list all.</p>",
        _leaderboards(board.filter(pl.col("rank") <= INDEX_TOP), "definitions/", heading=True),
        "<h2>fast_p by language</h2>",
        "<p>Share of (solution, workload) pairs correct and more than p times faster than the reference.</p>",
        f"<figure id='fast-p'>{fast_p_svg(fast, 'language')}</figure>",
        f"<figure id='fast-p-author'>{fast_p_svg(fast, 'author')}</figure>",
        "<h2>Language trade-offs</h2>", table(languages, attrs={"id": "languages"}),
    ]
    return page(f"{ds.name}: kernel leaderboard", "\n".join(body))


def _definition_page(d: dict, board: pl.DataFrame, tables: dict) -> str:
    name = d["name"]
    axes = ", ".join(f"{a['name']}={a['value']}" if a["type"] == "const" else a["name"] for a in d["axes"])
    body = [f"<p>{escape(d['description'] or '')}</p>",
            f"<p><b>op_type</b> {escape(d['op_type'])} &middot; <b>axes</b> {escape(axes)}</p>",
            "<h2>Leaderboard</h2>", _leaderboards(board.filter(pl.col("definition") == name), "", heading=False),
            _latency_plot(tables["roofline"], d, board.filter((pl.col("definition") == name) & (pl.col("rank") <= PLOT_TOP))),
            "<h2>Workloads</h2>", _table_or_none(tables["definition_workloads"], "workloads"),
            f"<h2>Evaluations</h2><p class='muted'>newest per solution, workload and hardware; "
            f"at most {MAX_EVALUATIONS} rows</p>",
            _table_or_none(tables["evaluations"], "evaluations")]
    return page(name, "\n".join(body), root="../")


def _table_or_none(frame: pl.DataFrame | None, table_id: str) -> str:
    if frame is None:
        return f'<p class="muted">no {table_id}</p>'
    return table(frame.drop("definition"), attrs={"id": table_id})


def _latency_plot(rows: pl.DataFrame | None, d: dict, top: pl.DataFrame) -> str:
    var_axes = [a["name"] for a in d["axes"] if a["type"] == "var"]
    if not var_axes or rows is None:
        return ""
    axis = var_axes[0]
    rows = rows.join(top.select("hardware", "solution"), on=["hardware", "solution"]).with_columns(
        pl.col("axes").str.extract(rf"(?:^| ){axis}=(\d+)").cast(pl.Int64).alias(axis)).drop_nulls(axis)
    if rows[axis].n_unique() < 2:
        return ""
    return (f"<h2>Latency by {escape(axis)}</h2><p class='muted'>the {PLOT_TOP} best ranked solutions "
            f"per hardware</p><figure>{latency_svg(rows, axis)}</figure>")
