"""Check every curated baseline solution against its reference on the GPU and print a table.

For each shipped definition, each of its solutions (torch, torch.compile, flashinfer, triton,
cuda) runs on a few default workloads (smallest, median and largest by input bytes) through the
executor's own build / inputs / verdict code (``fib_data.curated.solutions.check``). One failure
never stops the rest: each (solution, workload) is its own try/except. CUDA extensions and
flashinfer's JIT modules are built in background threads while the checks run, and a time budget
marks what is left as SKIPPED rather than overrunning.

Needs torch, triton, flashinfer, safetensors, pyarrow and numpy. Run from the project root:

    source .gpu_wheels/device_env.sh && python benchmarks/gpu/check_solutions.py

Options: --profile full|cpu (default full), --per-definition N (3), --only SUBSTRING,
--budget SECONDS (330), --device (cuda). Writes check_solutions.log and check_solutions.jsonl to $OUT if set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fib_data.blobs import BlobStore  # noqa: E402
from fib_data.curated.catalog import definitions  # noqa: E402
from fib_data.curated.solutions import solutions  # noqa: E402
from fib_data.curated.workloads import default_workloads, input_bytes  # noqa: E402

OUT = Path(os.environ["OUT"]) if os.environ.get("OUT") else None
_LOG = []


def say(line: str = "") -> None:
    print(line, flush=True)
    _LOG.append(line)


def environment() -> str:
    import torch
    import triton

    try:
        import flashinfer

        fi = flashinfer.__version__
    except Exception as exc:  # reported, not fatal: the other languages still run
        fi = f"unavailable ({type(exc).__name__}: {exc})"
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{gpu} | torch {torch.__version__} | triton {triton.__version__} | flashinfer {fi}"


def pick(workloads: list[dict], definition: dict, n: int) -> list[dict]:
    """Smallest, median and largest (by input bytes) of the default workloads."""
    size = {w["uuid"]: input_bytes(definition, {a["name"]: a["value"] for a in w["axes"]}) for w in workloads}
    ranked = sorted(workloads, key=lambda w: size[w["uuid"]])
    if len(ranked) <= n:
        return ranked
    return [ranked[round(i * (len(ranked) - 1) / (n - 1))] for i in range(n)] if n > 1 else ranked[:1]


#: Rows whose first call JIT-builds for minutes; checked last, and skipped if still building.
SLOW_JIT = "__flashinfer"
SLOW_PREFIX = "moe_"


def _warm(definition: dict, row: dict, store) -> None:
    """Call a flashinfer row once on a tiny workload so its JIT modules get built now."""
    from fib_data.curated.solutions.check import check

    check(definition, row, default_workloads(definition, store, "cpu")[0], store, "cuda")


def prebuild(rows: list[dict], by_name: dict, store) -> dict:
    """Start compiling CUDA rows and flashinfer's JIT modules in background threads.

    flashinfer builds each module in a ninja subprocess under a file lock, so builds overlap
    with the checks and with each other; a failure here is ignored (the check reports it).
    """
    import torch

    from fib_data.executor import build_solution

    jobs = {r["name"]: lambda r=r: build_solution(r, "cuda") for r in rows if r["language"] == "cuda"}
    jobs |= {r["name"]: lambda r=r: _warm(by_name[r["definition"]], r, store) for r in rows
             if "flashinfer" in (r["dependencies"] or []) and not is_slow(r)
             and default_workloads(by_name[r["definition"]], store, "cpu")}
    try:
        import flashinfer

        arch = "".join(map(str, torch.cuda.get_device_capability()))
        jobs["moe"] = lambda: flashinfer.fused_moe.core.get_cutlass_fused_moe_module(arch)
    except Exception:
        pass
    pool = ThreadPoolExecutor(max_workers=min(8, len(jobs) or 1))
    futures = {name: pool.submit(job) for name, job in jobs.items()}
    pool.shutdown(wait=False)
    return futures


def is_slow(row: dict) -> bool:
    return row["name"].startswith(SLOW_PREFIX) and row["name"].endswith(SLOW_JIT)


def check_one(definition, row, workloads, store, device) -> dict:
    from fib_data.curated.solutions.check import check
    from fib_data.executor.build import BuildError

    result = {"solution": row["name"], "status": "PASSED", "max_abs": 0.0, "max_rel": 0.0,
              "workloads": 0, "detail": "", "seconds": 0.0}
    start = time.time()
    for w in workloads:
        axes = ",".join(f"{a['name']}={a['value']}" for a in w["axes"])
        try:
            outcome = check(definition, row, w, store, device)
            status, detail = outcome.status, outcome.detail
            result["max_abs"] = max(result["max_abs"], outcome.max_abs)
            result["max_rel"] = max(result["max_rel"], outcome.max_rel)
        except Exception as exc:
            status = "COMPILE_ERROR" if isinstance(exc, BuildError) else "RUNTIME_ERROR"
            detail = f"{type(exc).__name__}: {exc}"
            _LOG.append(traceback.format_exc())
        result["workloads"] += 1
        if status != "PASSED" and result["status"] == "PASSED":
            result["status"], result["detail"] = status, f"[{axes}] {detail}"[:300]
    result["seconds"] = time.time() - start
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="full", choices=("full", "cpu"))
    parser.add_argument("--per-definition", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument("--budget", type=float, default=330.0)
    parser.add_argument("--device", default="cuda", help="cpu only for a smoke test of this script")
    args = parser.parse_args()
    t0 = time.time()
    say(environment())
    store = BlobStore(tempfile.mkdtemp(prefix="fib_check_blobs_"))
    defs = [d for d in definitions() if args.only in d["name"]]
    rows = [r for r in solutions(defs) if args.only in r["name"]]
    rows.sort(key=is_slow)
    by_name = {d["name"]: d for d in defs}
    futures = prebuild(rows, by_name, store) if args.device == "cuda" else {}
    say(f"{len(defs)} definitions, {len(rows)} solutions, profile {args.profile}, "
        f"{args.per_definition} workloads each, budget {args.budget:.0f}s")
    header = f"{'solution':62s} {'status':20s} {'n':>2s} {'max_abs':>9s} {'max_rel':>9s} {'sec':>6s}  detail"
    say(header)
    say("-" * len(header))
    results = []
    chosen = {d["name"]: pick(default_workloads(d, store, args.profile), d, args.per_definition) for d in defs}
    for row in rows:
        definition = by_name[row["definition"]]
        building = is_slow(row) and "moe" in futures and not futures["moe"].done()
        if time.time() - t0 > args.budget or building:
            why = "JIT build still running" if building else "time budget spent"
            r = {"solution": row["name"], "status": "SKIPPED", "max_abs": 0.0, "max_rel": 0.0,
                 "workloads": 0, "detail": why, "seconds": 0.0}
        else:
            if row["name"] in futures:  # never use a row while its warm-up still runs it
                futures[row["name"]].exception()
            r = check_one(definition, row, chosen[row["definition"]], store, args.device)
        results.append(r)
        say(f"{r['solution']:62s} {r['status']:20s} {r['workloads']:2d} {r['max_abs']:9.2e} "
            f"{r['max_rel']:9.2e} {r['seconds']:6.1f}  {r['detail'][:120]}")
    for name, f in futures.items():
        if f.done() and f.exception():
            _LOG.append(f"prebuild {name} failed: {f.exception()!r}")
    counts = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    say(f"done in {time.time() - t0:.0f}s: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if OUT:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "check_solutions.log").write_text("\n".join(_LOG) + "\n")
        (OUT / "check_solutions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    return 0 if all(r["status"] == "PASSED" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
