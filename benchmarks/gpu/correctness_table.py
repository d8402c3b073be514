"""Per (definition, solution): evaluations, statuses, max errors, speedups, from evaluation files.

    python benchmarks/gpu/correctness_table.py PATH [PATH ...] [--markdown] [--latest]

PATH is a dataset folder (its data/evaluations/ and any unconsolidated runs/*/batch-*.parquet are
read) or single Parquet files. ``--latest`` keeps, for each (definition, solution), only the rows
from the newest source that has it (a file's source is its folder, e.g. one
``benchmarks/results/<session>/``; a source is as new as its newest run id, which starts with the
run's UTC time). Needs only pyarrow, so it runs on the GPU machine too.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

COLUMNS = ["definition", "solution", "status", "max_absolute_error", "max_relative_error", "speedup_factor",
           "latency_ms", "environment"]


def files(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(file, source) pairs: a dataset folder is its files' source, a lone file's folder is its."""
    out = []
    for p in paths:
        if p.is_dir():
            out += [(f, p) for f in sorted((p / "data" / "evaluations").glob("*.parquet"))
                    + sorted(p.glob("runs/*/batch-*.parquet"))]
        else:
            out.append((p, p.parent))
    return out


def rows(paths: list[Path]) -> list[dict]:
    seen, out = set(), []
    for f, source in files(paths):
        t = pq.read_table(f)
        if t.num_rows == 0 or "solution_hash" not in t.column_names:
            continue
        for r in t.select(COLUMNS + ["workload_uuid", "solution_hash", "run_id"]).to_pylist():
            key = (r["solution_hash"], r["workload_uuid"], r["environment"]["hardware"], r["run_id"])
            if key not in seen:  # a batch file and its consolidated part file hold the same rows
                seen.add(key)
                out.append(r | {"source": str(source)})
    return out


def latest(found: list[dict]) -> list[dict]:
    newest: dict[str, str] = {}
    for r in found:
        newest[r["source"]] = max(newest.get(r["source"], ""), r["run_id"])
    last: dict[tuple, str] = {}
    for r in found:
        key = (r["definition"], r["solution"])
        if newest[r["source"]] > newest.get(last.get(key, ""), ""):
            last[key] = r["source"]
    return [r for r in found if r["source"] == last[(r["definition"], r["solution"])]]


def table(found: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in found:
        groups[(r["environment"]["hardware"], r["definition"], r["solution"])].append(r)
    out = []
    for (hw, d, s), rs in sorted(groups.items()):
        statuses: dict[str, int] = defaultdict(int)
        for r in rs:
            statuses[r["status"]] += 1
        errs = [r["max_absolute_error"] for r in rs if r["max_absolute_error"] is not None]
        rels = [r["max_relative_error"] for r in rs if r["max_relative_error"] is not None]
        speed = [r["speedup_factor"] for r in rs if r["speedup_factor"]]
        out.append({"hardware": hw, "definition": d, "solution": s.split("__")[-1], "n": len(rs),
                    "statuses": ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
                    "max_abs": max(errs) if errs else None, "max_rel": max(rels) if rels else None,
                    "geomean_speedup": math.exp(statistics.fmean(math.log(x) for x in speed)) if speed else None})
    return out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--latest", action="store_true", help="per pair, only the last source that has it")
    args = parser.parse_args()
    found = rows(args.paths)
    t = table(latest(found) if args.latest else found)
    keys = ["hardware", "definition", "solution", "n", "statuses", "max_abs", "max_rel", "geomean_speedup"]
    if args.markdown:
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for r in t:
            print("| " + " | ".join(_fmt(r[k]) for k in keys) + " |")
    else:
        for r in t:
            print(f"{r['definition']:44} {r['solution']:14} {r['n']:4} {r['statuses']:40} "
                  f"abs {_fmt(r['max_abs']):>9} rel {_fmt(r['max_rel']):>9} x{_fmt(r['geomean_speedup'])}")
    total = sum(r["n"] for r in t)
    print(f"{total} evaluations, {len(t)} (definition, solution) pairs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
