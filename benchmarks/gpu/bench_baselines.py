"""Evaluate every shipped baseline solution on its default workloads, on this machine's GPUs.

    python benchmarks/gpu/bench_baselines.py [DATASET] [--profile full] [--stop-after SECONDS]
                                             [--known benchmarks/results/*/run-*.parquet]

Builds the shipped dataset (``fib build``'s content) into DATASET (default ./flashinfer-bench) if
it is not there, runs the executor on every GPU (solutions are pre-built in parallel first), and
leaves the evaluations part file in DATASET/data/evaluations/. Rerunning resumes: finished
evaluations are not repeated, so a device session can split the work over several calls.
``--stop-after`` ends the run cleanly (SIGTERM to ourselves is avoided: the scheduler is simply
given no more jobs) so the part file is written before a device call's limit. With $OUT set, the
part files and the correctness table are copied there. ``FIB_NO_JIT=1`` leaves out the solutions
that need flashinfer's JIT or nvcc (minutes of pre-build each; ``--stop-after`` also ends the
pre-builds). ``--known`` imports part files measured earlier (``fib import-evaluations``) before the
run, so only what they lack for this machine's environment is measured; only the new part file goes
to $OUT.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_kernels as K  # noqa: E402


def main() -> int:
    from fib_data.curated.build import build_dataset
    from fib_data.dataset import Dataset
    from fib_data.executor.bench import BenchOptions, parse_devices, run_bench
    from fib_data.executor.store import import_runs

    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", nargs="?", type=Path, default=Path("flashinfer-bench"))
    parser.add_argument("--profile", default="full")
    parser.add_argument("--stop-after", type=float, default=None, help="seconds; then stop taking jobs")
    parser.add_argument("--definition", action="append", default=None)
    parser.add_argument("--skip", action="append", default=[], help="skip definitions containing this")
    parser.add_argument("--skip-solution", action="append", default=[], help="skip solutions containing this")
    parser.add_argument("--known", nargs="*", type=Path, default=[], help="earlier part files to resume from")
    args = parser.parse_args()
    root = args.dataset
    if not (root / "data").is_dir():
        build_dataset(root, args.profile)
    if args.known:
        imported = sum(f["imported"] for f in import_runs(Dataset(root), args.known))
        print(f"imported {imported} earlier evaluations from {len(args.known)} part files", flush=True)
    names = args.definition or [d["name"] for d in Dataset(root).read("definitions").to_pylist()]
    names = [n for n in names if not any(s in n for s in args.skip)]
    solutions = [s["name"] for s in Dataset(root).read("solutions").to_pylist()
                 if not any(x in s["name"] for x in args.skip_solution) and not (K.no_jit() and _jit(s))]
    started = time.monotonic()
    deadline = started + args.stop_after if args.stop_after else None

    def show(r):
        print(f"{r['status']:20} {r['solution']:60} {r['latency_ms'] or float('nan'):10.4f} ms  "
              f"x{r['speedup_factor'] or float('nan'):7.2f}  {','.join(r['flags'])}", flush=True)

    result = run_bench(root, definitions=names, solutions=solutions, devices=parse_devices("auto"),
                       options=BenchOptions(timeout=180.0, build_timeout=420.0),
                       on_row=show, deadline=deadline,
                       on_prebuilt=lambda n, s, e: print(f"prebuilt {n} in {s:.0f} s" + (f": {e}" if e else ""),
                                                         flush=True))
    summary = {"run_id": result["run_id"], "evaluations": len(result["rows"]), "statuses": result["statuses"],
               "already_stored": result["skipped_done"], "not_started": result.get("not_started", 0),
               "wall_s": time.monotonic() - started, "part_file": str(result["part_file"]),
               "dataset_evaluations": Dataset(root).count("evaluations")}
    print(json.dumps(summary, indent=2))
    K.save_json("bench_baselines.json", summary)
    out = K.out_dir()
    if out:
        if result["part_file"]:
            shutil.copy(result["part_file"], out / Path(result["part_file"]).name)
        with open(out / "correctness_table.md", "w") as f:
            subprocess.run([sys.executable, str(HERE / "correctness_table.py"), str(root), "--markdown"], stdout=f)
    return 0


def _jit(solution: dict) -> bool:
    """Needs flashinfer's JIT or nvcc (minutes per kernel): left out under FIB_NO_JIT=1."""
    return solution["language"] in ("cuda", "cpp") or "flashinfer" in (solution.get("dependencies") or [])


if __name__ == "__main__":
    sys.exit(main())
