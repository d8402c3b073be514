"""Evaluate every shipped baseline solution on its default workloads, on this machine's GPUs.

    python benchmarks/gpu/bench_baselines.py [DATASET]    # ~4-6 min on one H100 (nvcc/torch.compile builds)

Builds the shipped dataset (``fib build``'s content) into DATASET (default $OUT/flashinfer-bench,
else ./flashinfer-bench), runs the executor on every GPU, and leaves the evaluations part file in
DATASET/data/evaluations/ (bring that folder back to add the rows to the published dataset).
Rerunning resumes: finished evaluations are not repeated.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kernels as K  # noqa: E402


def main() -> int:
    from fib_data.curated.build import build_dataset
    from fib_data.dataset import Dataset
    from fib_data.executor.bench import BenchOptions, parse_devices, run_bench

    out = K.out_dir()
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else (out / "flashinfer-bench" if out else Path("flashinfer-bench"))
    if not (root / "data").is_dir():
        build_dataset(root)
    started = time.monotonic()
    result = run_bench(root, devices=parse_devices("auto"), options=BenchOptions(timeout=180.0, build_timeout=420.0),
                       on_row=lambda r: print(f"{r['status']:20} {r['solution']:60} "
                                              f"{r['latency_ms'] or float('nan'):10.4f} ms  "
                                              f"x{r['speedup_factor'] or float('nan'):7.2f}  {','.join(r['flags'])}",
                                              flush=True))
    summary = {"run_id": result["run_id"], "evaluations": len(result["rows"]), "statuses": result["statuses"],
               "already_stored": result["skipped_done"], "wall_s": time.monotonic() - started,
               "part_file": str(result["part_file"]), "dataset_evaluations": Dataset(root).count("evaluations")}
    print(json.dumps(summary, indent=2))
    K.save_json("bench_baselines.json", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
