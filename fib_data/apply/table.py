"""The dispatch table: for each definition on one hardware, per evaluated shape, the correct
solutions ranked fastest first.

A *bucket* is one evaluated point in var-axis space (workloads with identical var axes merge).
A solution is a candidate for a bucket when every evaluation of it there, on this hardware, is
PASSED, within the optional ``max_atol``/``max_rtol`` limits, and carries no rejecting flag; its
latency is the mean over those evaluations. Only solutions whose evaluated content hash is still
stored in the solutions table are kept, so what runs is exactly what was measured.

Two engines compute the same candidate rows: DuckDB SQL (``engine="sql"``) and plain pyarrow
(``engine="arrow"``), the latter for machines without DuckDB such as the GPU image. ``"auto"``
uses SQL when DuckDB imports. The result is cached as JSON under ``$FIB_DATA_CACHE`` (default
``~/.cache/fib-data``) by a digest of the part files it was computed from and of the settings.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import atomic
from ..dataset import Dataset

POLICIES = ("fastest-correct",)
#: Flags that make an evaluation unusable for serving, whatever its status.
REJECT_FLAGS = ("input_mutated",)
TABLE_VERSION = 1

_CANDIDATES_SQL = """
WITH ev AS (
    SELECT e.definition, e.environment.hardware AS hardware, w.axes AS axes, e.solution,
           e.solution_hash, e.latency_ms,
           e.status = 'PASSED'
             AND (CAST($max_atol AS DOUBLE) IS NULL OR e.max_absolute_error <= $max_atol)
             AND (CAST($max_rtol AS DOUBLE) IS NULL OR e.max_relative_error <= $max_rtol)
             AND NOT list_has_any(coalesce(e.flags, []), CAST($reject AS VARCHAR[])) AS ok
    FROM evaluations e JOIN workloads w ON w.uuid = e.workload_uuid
    WHERE $hardware IS NULL OR e.environment.hardware = $hardware
),
per_solution AS (
    SELECT definition, hardware, list_sort(axes) AS axes, solution, solution_hash,
           bool_and(ok AND latency_ms IS NOT NULL) AS correct, avg(latency_ms) AS latency_ms
    FROM ev GROUP BY ALL
)
SELECT p.definition, p.hardware, p.axes, p.solution, p.solution_hash, p.latency_ms,
       p.correct AND s.name IS NOT NULL AS correct
FROM per_solution p
LEFT JOIN solutions s ON s.name = p.solution AND s.content_hash = p.solution_hash
ORDER BY p.definition, p.hardware
"""


@dataclass
class Candidate:
    solution: str
    solution_hash: str
    latency_ms: float


@dataclass
class Bucket:
    axes: tuple[int, ...]
    candidates: list[Candidate]          # correct ones, fastest first; empty: fall back
    evaluated: int                       # solutions evaluated at this shape, correct or not


@dataclass
class DefinitionTable:
    var_axes: tuple[str, ...]
    buckets: list[Bucket] = field(default_factory=list)


@dataclass
class DispatchTable:
    digest: str
    hardware: str | None
    policy: str
    definitions: dict[str, DefinitionTable]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DispatchTable":
        raw = json.loads(text)
        defs = {name: DefinitionTable(tuple(d["var_axes"]), [
            Bucket(tuple(b["axes"]), [Candidate(**c) for c in b["candidates"]], b["evaluated"])
            for b in d["buckets"]]) for name, d in raw["definitions"].items()}
        return cls(raw["digest"], raw["hardware"], raw["policy"], defs)


def build_table(ds: Dataset, hardware: str | None = None, policy: str = "fastest-correct", *,
                max_atol: float | None = None, max_rtol: float | None = None,
                reject_flags: tuple[str, ...] = REJECT_FLAGS, engine: str = "auto",
                cache: bool = True) -> DispatchTable:
    """The dispatch table of ``ds`` for ``hardware`` (None: every hardware merged)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    settings = {"hardware": hardware, "policy": policy, "max_atol": max_atol,
                "max_rtol": max_rtol, "reject": list(reject_flags)}
    digest = dataset_digest(ds, settings)
    path = cache_dir() / f"{digest}.json"
    if cache and path.is_file():
        return DispatchTable.from_json(path.read_text())
    rows = candidate_rows(ds, settings, engine)
    table = DispatchTable(digest, hardware, policy, _assemble(ds, rows))
    if cache:
        atomic.write_text(path, table.to_json())
    return table


def cache_dir() -> Path:
    root = os.environ.get("FIB_DATA_CACHE") or Path.home() / ".cache" / "fib-data"
    return Path(root) / "apply_tables"


def dataset_digest(ds: Dataset, settings: dict[str, Any]) -> str:
    """Part files are never rewritten in place, so name, size and mtime identify their content."""
    h = hashlib.sha256(json.dumps([TABLE_VERSION, settings], sort_keys=True).encode())
    for table in ("definitions", "workloads", "solutions", "evaluations"):
        for f in ds.files(table):
            st = f.stat()
            h.update(f"{table}/{f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def candidate_rows(ds: Dataset, settings: dict[str, Any], engine: str = "auto") -> list[dict]:
    """One row per (definition, hardware, var axes, solution) with ``correct`` and mean latency."""
    if engine == "auto":
        engine = "sql" if importlib.util.find_spec("duckdb") else "arrow"
    if engine == "sql":
        rows = _rows_sql(ds, settings)
    elif engine == "arrow":
        rows = _rows_arrow(ds, settings)
    else:
        raise ValueError(f"unknown engine {engine!r}; expected auto, sql or arrow")
    for r in rows:
        r["axes"] = {a["name"]: a["value"] for a in r["axes"]}
    return rows


def _rows_sql(ds: Dataset, settings: dict[str, Any]) -> list[dict]:
    con = ds.connect()
    try:
        params = {k: settings[k] for k in ("hardware", "max_atol", "max_rtol", "reject")}
        cur = con.execute(_CANDIDATES_SQL, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()


def _rows_arrow(ds: Dataset, settings: dict[str, Any]) -> list[dict]:
    axes_of = {w["uuid"]: w["axes"] for w in ds.read("workloads", ["uuid", "axes"]).to_pylist()}
    stored = {(s["name"], s["content_hash"])
              for s in ds.read("solutions", ["name", "content_hash"]).to_pylist()}
    cols = ["definition", "workload_uuid", "solution", "solution_hash", "status",
            "max_absolute_error", "max_relative_error", "latency_ms", "flags", "environment"]
    groups: dict[tuple, dict] = {}
    for e in ds.read("evaluations", cols).to_pylist():
        hw = e["environment"]["hardware"]
        if (settings["hardware"] is not None and hw != settings["hardware"]) \
                or e["workload_uuid"] not in axes_of:
            continue
        axes = sorted(axes_of[e["workload_uuid"]], key=lambda a: (a["name"], a["value"]))
        key = (e["definition"], hw, tuple((a["name"], a["value"]) for a in axes),
               e["solution"], e["solution_hash"])
        g = groups.setdefault(key, {"definition": key[0], "hardware": hw, "axes": axes,
                                    "solution": key[3], "solution_hash": key[4],
                                    "correct": (key[3], key[4]) in stored, "lat": []})
        g["correct"] = g["correct"] and _ok(e, settings)
        g["lat"].append(e["latency_ms"])
    rows = []
    for g in groups.values():
        lat = [x for x in g.pop("lat") if x is not None]
        g["latency_ms"] = sum(lat) / len(lat) if lat else None
        rows.append(g)
    return rows


def _ok(e: dict, s: dict[str, Any]) -> bool:
    def within(value, limit):
        return limit is None or (value is not None and value <= limit)

    return (e["status"] == "PASSED" and e["latency_ms"] is not None
            and within(e["max_absolute_error"], s["max_atol"])
            and within(e["max_relative_error"], s["max_rtol"])
            and not set(e["flags"] or ()) & set(s["reject"]))


def _assemble(ds: Dataset, rows: list[dict]) -> dict[str, DefinitionTable]:
    var_axes = {d["name"]: tuple(a["name"] for a in d["axes"] if a["type"] == "var")
                for d in ds.read("definitions", ["name", "axes"]).to_pylist()}
    points: dict[tuple, list[dict]] = {}
    for r in rows:
        names = var_axes.get(r["definition"])
        if names is None or any(n not in r["axes"] for n in names):
            continue  # no such definition, or a workload that lacks a var axis: not a usable point
        points.setdefault((r["definition"], tuple(r["axes"][n] for n in names)), []).append(r)
    out: dict[str, DefinitionTable] = {}
    for (name, axes), group in sorted(points.items()):
        # Merged hardware (hardware=None) ranks each hardware's rows together; a solution must be
        # correct everywhere it was evaluated.
        by_solution: dict[tuple[str, str], list[dict]] = {}
        for r in group:
            by_solution.setdefault((r["solution"], r["solution_hash"]), []).append(r)
        cands = [Candidate(s, h, sum(r["latency_ms"] for r in rs) / len(rs))
                 for (s, h), rs in by_solution.items() if all(r["correct"] for r in rs)]
        cands.sort(key=lambda c: (c.latency_ms, c.solution))
        out.setdefault(name, DefinitionTable(var_axes[name])).buckets.append(
            Bucket(axes, cands, len(by_solution)))
    return out
