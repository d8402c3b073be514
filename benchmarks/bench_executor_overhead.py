"""Where a ``fib bench`` run's time goes outside evaluations, on CPU.

A dataset of ~200 tiny jobs (RMSNorm solutions x small batch sizes, plus a gather workload with
a stored blob) is benchmarked with one CPU worker. Each line splits the run's wall time into
worker start (until the jobs begin), time inside evaluations (the sum of the rows'
``correctness_extra.phases_s``, measured in the worker) and the remainder: the parent's per-job
work, pipe transfers, writes and the run's finish.

    python benchmarks/bench_executor_overhead.py [--solutions 20] [--workloads 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import executor_data as data  # noqa: E402
from fib_data.executor.bench import BenchOptions, run_bench  # noqa: E402

#: Phases measured inside the "timing" phase; summing them as well would count them twice.
INSIDE_TIMING = {"pool", "warmup", "timed", "verify"}
OPTIONS = dict(trials=1, reps=2, min_reps=2, warmup_ms=0.5, timeout=60.0, build_timeout=0.0)


def build(root: Path, solutions: int, workloads: int):
    sols = [data.solution(data.RMSNORM, f"rms_{i}", data.HONEST_DPS + f"# {i}\n", True) for i in range(solutions)]
    sols += [data.solution(data.GATHER, f"gather_{i}", data.GATHER_SOLUTION + f"# {i}\n", False)
             for i in range(max(solutions // 10, 1))]
    return data.build(root, sols, batches=tuple(range(1, workloads + 1)))


def evaluation_s(row: dict) -> float:
    phases = json.loads(row["correctness_extra"] or "{}").get("phases_s") or {}
    return sum(v for k, v in phases.items() if k not in INSIDE_TIMING)


def once(solutions: int, workloads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ds = build(Path(tmp) / "ds", solutions, workloads)
        marks: dict[str, float] = {}
        began = time.perf_counter()

        def on_start(selected: int, todo: int) -> None:
            marks["start"] = time.perf_counter() - began

        def on_row(row: dict) -> None:
            marks.setdefault("first_row", time.perf_counter() - began)

        result = run_bench(ds.root, devices=["cpu"], options=BenchOptions(**OPTIONS), all_hardware=True,
                           on_start=on_start, on_row=on_row)
        wall = time.perf_counter() - began
    evals = sum(evaluation_s(r) for r in result["rows"])
    return {"jobs": len(result["rows"]), "wall_s": wall, "start_s": marks["start"],
            "first_row_s": marks.get("first_row", float("nan")), "evals_s": evals,
            "overhead_s": wall - marks["start"] - evals, "statuses": result["statuses"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solutions", type=int, default=20)
    parser.add_argument("--workloads", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"{'run':>3} {'jobs':>5} {'wall s':>7} {'start s':>8} {'1st row s':>9} {'evals s':>8} "
          f"{'overhead s':>10} {'ms/job':>7}  statuses")
    for i in range(args.repeat):
        r = once(args.solutions, args.workloads)
        print(f"{i:>3} {r['jobs']:>5} {r['wall_s']:>7.2f} {r['start_s']:>8.2f} {r['first_row_s']:>9.2f} "
              f"{r['evals_s']:>8.2f} {r['overhead_s']:>10.2f} {1e3 * r['overhead_s'] / max(r['jobs'], 1):>7.2f}"
              f"  {r['statuses']}", flush=True)


if __name__ == "__main__":
    main()
