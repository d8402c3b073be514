"""Time leaderboard, fast_p and language_tradeoffs on 1M evaluations, each from a cold process.

    python benchmarks/bench_queries.py [--evaluations 1000000] [--dataset DIR] [--keep]

Builds a synthetic dataset with ``fib_data.synthetic.write_synthetic`` (20 definitions x 500
workloads x 100 solutions = 1M evaluations, with realistic logs, sources and environments), then
for each query starts a fresh ``python -c`` that imports fib_data, runs the query and reports the
import and query times; the whole subprocess is timed too (interpreter start included).
Target: < 1 s per query from a cold process on a 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fib_data.synthetic import write_synthetic

QUERIES = ("leaderboard", "fast_p", "language_tradeoffs")
CHILD = """
import sys, time
t0 = time.perf_counter()
import duckdb, polars, pyarrow  # what run_query needs, imported here to time it apart
from fib_data.query import run_query
t1 = time.perf_counter()
frame = run_query(sys.argv[1], sys.argv[2])
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {frame.height}")
"""


def cold_run(root: Path, name: str) -> tuple[float, float, float, int]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), name], check=True,
                         capture_output=True, text=True).stdout.split()
    return time.perf_counter() - t0, float(out[0]), float(out[1]), int(out[2])


def cold_cli(root: Path, name: str) -> float:
    """The same query through the command line, CSV written to /dev/null."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fib_data", "query", name, str(root), "--format", "csv",
                    "--out", os.devnull], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=1_000_000, help="Rounded to 50,000s.")
    parser.add_argument("--repeat", type=int, default=3, help="Cold runs per query; the best counts.")
    parser.add_argument("--dataset", type=Path, help="Reuse or build the dataset here.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary dataset.")
    args = parser.parse_args()
    root = args.dataset or Path(tempfile.mkdtemp(prefix="fib-bench-")) / "ds"
    try:
        if not (root / "data").is_dir():
            t0 = time.perf_counter()
            ds = write_synthetic(root, n_defs=max(1, args.evaluations // 50_000), n_workloads=500, n_solutions=100)
            print(f"built {ds.count('evaluations'):,} evaluations in {time.perf_counter() - t0:.1f} s at {root}")
        print(f"{'query':<20} {'process s':>10} {'import s':>9} {'query s':>8} {'rows':>7} {'fib query s':>12}")
        for name in QUERIES:
            runs = [cold_run(root, name) for _ in range(args.repeat)]
            wall, imp, query, rows = min(runs)
            cli = min(cold_cli(root, name) for _ in range(args.repeat))
            print(f"{name:<20} {wall:>10.3f} {imp:>9.3f} {query:>8.3f} {rows:>7} {cli:>12.3f}")
    finally:
        if args.dataset is None and not args.keep:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
