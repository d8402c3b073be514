"""Load + per-definition leaderboard: flashinfer-bench's TraceSet over JSON vs DuckDB over our Parquet.

    python benchmarks/bench_load_leaderboard.py --peer-python /tmp/peer-venv/bin/python
    python benchmarks/bench_load_leaderboard.py --n-workloads 50     # 100k traces, quick look

Steps: build a synthetic dataset of n_defs x n_workloads x n_solutions evaluations
(fib_data.synthetic), export it to the FlashInfer Trace JSON layout with our exporter, import that
JSON back with our importer, then time in a fresh process each:

  peer: import flashinfer_bench; TraceSet.from_path(json); mean speedup_factor of PASSED traces
        per (definition, solution)
  ours: import duckdb; the same aggregate over <dataset>/data/evaluations/*.parquet

Each child reports its own times and peak RSS (resource.getrusage); the two leaderboards are
compared. The peer is killed if its RSS passes --peer-max-rss-gb (reported, never extrapolated).
The peer runs in its own venv (see the README of benchmarks/ or the --peer-python help).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Shared by both children: the clock starts before the library import; ``emit`` reports.
_COMMON = r'''
import json, resource, sys, time
from collections import defaultdict
t0 = time.perf_counter()


def emit(t1, t2, t3, rows, board):
    hwm = next(int(line.split()[1]) / 1024 for line in open("/proc/self/status")
               if line.startswith("VmHWM:"))
    print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "rank_s": t3 - t2,
                      "total_s": t3 - t0, "rows": rows, "vm_hwm_mb": hwm,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "board": board}))
'''

_PEER = _COMMON + r'''
from flashinfer_bench.data import TraceSet
from flashinfer_bench.data.trace import EvaluationStatus
t1 = time.perf_counter()
ts = TraceSet.from_path(sys.argv[1])
t2 = time.perf_counter()
board = {}
for definition, traces in ts.traces.items():
    acc = defaultdict(lambda: [0.0, 0])
    for t in traces:
        if t.evaluation.status == EvaluationStatus.PASSED:
            a = acc[t.solution]
            a[0] += t.evaluation.performance.speedup_factor
            a[1] += 1
    board[definition] = sorted(((s, v[0] / v[1], v[1]) for s, v in acc.items()),
                               key=lambda r: (-r[1], r[0]))
emit(t1, t2, time.perf_counter(), sum(len(v) for v in ts.traces.values()), board)
'''

_OURS = _COMMON + r'''
import duckdb
t1 = time.perf_counter()
con = duckdb.connect()
glob = sys.argv[1].replace("'", "''") + "/data/evaluations/*.parquet"
rows = con.execute(f"""
    SELECT definition, solution, avg(speedup_factor) AS mean_speedup, count(*) AS n
    FROM read_parquet('{glob}') WHERE status = 'PASSED'
    GROUP BY definition, solution ORDER BY definition, mean_speedup DESC, solution""").fetchall()
total = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]
board = {}
for definition, solution, mean, n in rows:
    board.setdefault(definition, []).append((solution, mean, n))
emit(t1, t1, time.perf_counter(), total, board)  # no separate load step: DuckDB scans in place
'''


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def run_child(python: str, code: str, root: Path, max_rss_gb: float) -> dict:
    """Run one cold process; kill it if its resident memory passes max_rss_gb."""
    start = time.perf_counter()
    # Files, not pipes: the parent only polls, so a full pipe would block the child.
    out_file, err_file = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([python, "-c", code, str(root)], stdout=out_file, stderr=err_file,
                            text=True)
    while proc.poll() is None:
        rss = _rss_kb(proc.pid)
        if rss > max_rss_gb * 1024 * 1024:
            proc.kill()
            proc.wait()
            return {"error": f"killed at {rss / 1024 / 1024:.1f} GB RSS (limit {max_rss_gb} GB)",
                    "wall_s": time.perf_counter() - start}
        time.sleep(0.05)
    out_file.seek(0)
    err_file.seek(0)
    out, err = out_file.read(), err_file.read()
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {err.strip()[-2000:]}",
                "wall_s": time.perf_counter() - start}
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - start
    return result


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def boards_agree(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for d in a:
        x = {s: (m, n) for s, m, n in a[d]}
        y = {s: (m, n) for s, m, n in b[d]}
        if x.keys() != y.keys() or any(
                abs(x[s][0] - y[s][0]) > 1e-9 * max(1.0, abs(x[s][0])) or x[s][1] != y[s][1]
                for s in x):
            return False
    return True


def prepare(work: Path, n_defs: int, n_workloads: int, n_solutions: int, seed: int) -> dict:
    from fib_data.interop import export_json, import_json
    from fib_data.synthetic import write_synthetic

    steps = {}
    for name in ("synthetic", "json", "dataset"):
        shutil.rmtree(work / name, ignore_errors=True)
    t = time.perf_counter()
    write_synthetic(work / "synthetic", n_defs, n_workloads, n_solutions, seed)
    steps["generate Parquet (synthetic_tables)"] = time.perf_counter() - t
    t = time.perf_counter()
    export_json(work / "synthetic", work / "json")
    steps["export-json"] = time.perf_counter() - t
    t = time.perf_counter()
    import_json(work / "json", work / "dataset")
    steps["import-json"] = time.perf_counter() - t
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n-defs", type=int, default=20)
    ap.add_argument("--n-workloads", type=int, default=500, help="per definition")
    ap.add_argument("--n-solutions", type=int, default=100, help="per definition")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="work folder (default /tmp/fib-bench-N)")
    ap.add_argument("--reuse", action="store_true", help="reuse json/ and dataset/ from --work")
    ap.add_argument("--peer-python", default="/tmp/peer-venv/bin/python",
                    help="python of a venv with flashinfer-bench==0.1.2 (pip install torch==2.13.0; "
                         "pip install flashinfer-bench==0.1.2 --no-deps; pip install pydantic "
                         "safetensors docstring-parser numpy)")
    ap.add_argument("--peer-max-rss-gb", type=float, default=18.0)
    ap.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.n_defs * args.n_workloads * args.n_solutions
    work = args.work or Path(f"/tmp/fib-bench-{n}")
    work.mkdir(parents=True, exist_ok=True)
    if args.prepare_only:
        for step, secs in prepare(work, args.n_defs, args.n_workloads, args.n_solutions,
                                  args.seed).items():
            print(f"{step:<38} {secs:8.1f} s", flush=True)
        return
    if not (args.reuse and (work / "dataset").is_dir() and (work / "json").is_dir()):
        # In a child: Linux keeps a process's peak RSS across fork + exec (getrusage), so the
        # timed children must be started from a parent that never held the generated data.
        subprocess.run([sys.executable, __file__, "--prepare-only", "--work", str(work),
                        *sys.argv[1:]], check=True)

    ours = run_child(sys.executable, _OURS, work / "dataset", 8.0)
    peer = run_child(args.peer_python, _PEER, work / "json", args.peer_max_rss_gb)
    report(n, work, ours, peer)


def report(n: int, work: Path, ours: dict, peer: dict) -> None:
    json_bytes, parquet_bytes = folder_bytes(work / "json"), folder_bytes(work / "dataset")
    print(f"\ntraces: {n:,} ({work})")
    print(f"{'':<28}{'peer (TraceSet, JSON)':>24}{'ours (DuckDB, Parquet)':>26}")
    for key, label in (("total_s", "in-process total s"), ("import_s", "  library import s"),
                       ("load_s", "  load s"), ("rank_s", "  leaderboard s"),
                       ("wall_s", "process wall s (incl. start)"),
                       ("peak_rss_mb", "peak RSS MB (getrusage)"), ("vm_hwm_mb", "peak RSS MB (VmHWM)"),
                       ("rows", "traces seen")):
        print(f"{label:<28}{_fmt(peer.get(key)):>24}{_fmt(ours.get(key)):>26}")
    print(f"{'on-disk size MB':<28}{json_bytes / 1e6:>24.1f}{parquet_bytes / 1e6:>26.1f}")
    for side, res in (("peer", peer), ("ours", ours)):
        if "error" in res:
            print(f"{side} FAILED: {res['error']}")
    if "error" in peer or "error" in ours:
        return
    data_peer = peer["load_s"] + peer["rank_s"]
    print(f"\nspeedup, in-process total (imports included): {peer['total_s'] / ours['total_s']:.0f}x")
    print(f"speedup, load + leaderboard (imports excluded): {data_peer / ours['rank_s']:.0f}x")
    print(f"speedup, process wall time:                    {peer['wall_s'] / ours['wall_s']:.0f}x")
    print(f"size ratio JSON / Parquet:                     {json_bytes / parquet_bytes:.1f}x")
    print(f"leaderboards agree: {boards_agree(peer['board'], ours['board'])}")


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.3f}"


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
