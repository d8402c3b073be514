"""Upstream flashinfer-bench 0.1.2 vs our executor on the same solutions and workloads.

    python benchmarks/gpu/vs_peer.py [--quick]      # ~4 min on an H100; logs to $OUT if set

Both run at their own defaults on one GPU (peer: warmup 10, 50 iterations x 3 trials, persistent
worker; ours: 3 trials, up to 50 timed calls over rotating inputs, spawn worker), each in a fresh
Python process of its own, one after the other: neither inherits the other's imports or CUDA
context. flashinfer's JIT is warmed first so neither side pays it. Reported: evaluations per
GPU-minute (each side's wall time from before its library import to the end of the run, worker
start included), where our time went (phase totals), and per-pair agreement of the median
latencies (ours / peer - 1), for our default timer (host launch latency held out) and for ours
with --no-hold (launch latency inside the interval, as the peer times). The peer wheel and its
pure dependencies are taken from benchmarks/gpu/wheels/ when they are not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_kernels as K  # noqa: E402

BATCHES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]


def plan(batches: list[int]):
    defs = [(K.rmsnorm(4096), "rmsnorm", "batch_size"), (K.rmsnorm(8192), "rmsnorm", "batch_size"),
            (K.silu_mul(14336), "silu_and_mul", "batch_size"), (K.gemm(4096, 4096), "gemm", "m")]
    return [(d, [{axis: b} for b in batches]) for d, _, axis in defs], {d["name"]: f for d, f, _ in defs}


#: GEMMs long enough (about 1.6, 3.3 and 6.5 ms on an H100) that the peer's per-call host overhead,
#: which its timer counts (about 0.15-0.2 ms on 0.01-0.05 ms kernels), fades: there both should agree.
LARGE = (8192, 8192, [8192, 16384, 32768])


def plan_large(_batches=None):
    n, k, ms = LARGE
    d = K.gemm(n, k)
    return [(d, [{"m": m} for m in ms])], {d["name"]: "gemm"}


def vendor_wheels(target: Path) -> list[str]:
    """Make wheels in wheels/ importable when their module is missing (and the wheel fits this Python)."""
    added = []
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for wheel in sorted((HERE / "wheels").glob("*.whl")):
        module = wheel.name.split("-")[0]
        if importlib.util.find_spec(module) is not None:
            continue
        if "-py3-none-" not in wheel.name and f"-{tag}-" not in wheel.name and "abi3" not in wheel.name:
            continue
        zipfile.ZipFile(wheel).extractall(target)
        added.append(wheel.name)
    if added:
        sys.path.insert(0, str(target))
    return added


def warm_jit() -> None:
    """Compile (or load) the flashinfer kernels both sides call, outside either's timed run."""
    if not K.has_flashinfer():
        return
    try:
        import flashinfer
        import torch

        for h in (4096, 8192):
            x = torch.randn(4, h, dtype=torch.bfloat16, device=K.DEVICE)
            flashinfer.norm.rmsnorm(x, torch.ones(h, dtype=torch.bfloat16, device=K.DEVICE), eps=1e-5)
        flashinfer.activation.silu_and_mul(torch.randn(4, 2 * 14336, dtype=torch.bfloat16, device=K.DEVICE))
        torch.cuda.synchronize()
    except Exception:
        traceback.print_exc()


def run_peer(trace_dir: Path) -> tuple[dict, float, int]:
    started = time.monotonic()  # its imports count: each side runs in a fresh process (see main)
    from flashinfer_bench.bench import Benchmark, BenchmarkConfig
    from flashinfer_bench.data import TraceSet

    ts = TraceSet.from_path(str(trace_dir))
    bench = Benchmark(ts, BenchmarkConfig())
    try:
        result = bench.run_all(dump_traces=False)
    finally:
        bench.close()
    wall = time.monotonic() - started
    out, n = {}, 0
    for traces in result.traces.values():
        for t in traces:
            n += 1
            ev = t.evaluation
            lat = ev.performance.latency_ms if ev.performance else None
            out[(t.solution, t.workload.uuid)] = {"status": ev.status.value, "latency_ms": lat}
    return out, wall, n


def run_ours(root: Path, hold: bool = True, **options) -> tuple[dict, float, int]:
    started = time.monotonic()
    from fib_data.executor.bench import BenchOptions, run_bench

    marks = {}
    result = run_bench(root, devices=[K.DEVICE], options=BenchOptions(hold=hold, **options), all_hardware=K.DEVICE == "cpu",
                       on_start=lambda *_: marks.setdefault("first_job_s", time.monotonic() - started),
                       on_row=lambda *_: marks.update(last_row_s=time.monotonic() - started))
    wall = time.monotonic() - started
    manifest = json.loads((root / "runs" / result["run_id"] / "manifest.json").read_text())
    marks.update(worker_start_s=manifest.get("worker_start_s"), wall_s=wall)
    print(f"ours{'' if hold else ' --no-hold'}{options or ''}: start-up {marks}", flush=True)
    out = {}
    for r in result["rows"]:
        extra = json.loads(r["correctness_extra"] or "{}")
        out[(r["solution"], r["workload_uuid"])] = {"status": r["status"], "latency_ms": r["latency_ms"],
                                                    "definition": r["definition"],
                                                    "flags": r["flags"], "phases": extra.get("phases_s") or {},
                                                    "host_enqueue_ms": extra.get("host_enqueue_ms"),
                                                    "hold_ms": extra.get("hold_ms"), "hold": extra.get("hold"),
                                                    "unheld": extra.get("unheld_calls"),
                                                    "reps": (r.get("timing") or {}).get("repetitions")}
    for p in (root / "data" / "evaluations").glob("run-*.parquet"):
        p.unlink()  # the next run must evaluate everything again, not resume
    return out, wall, len(result["rows"]), marks.get("first_job_s")


class Side(NamedTuple):
    rows: dict
    wall: float
    n: int
    first_job_s: float | None  # ours: from the process start to its first job (imports, worker start)


def run_side(tmp: Path, side: str, tree: str | None = None, env_extra: dict | None = None, **options) -> Side:
    """One side in a fresh Python process, so neither inherits the other's imports, CUDA context
    or warmed-up state; its wall time counts its own imports, workers and run (not the interpreter
    start or this script's imports, which both sides share). ``tree``: a checkout whose
    ``fib_data`` runs instead of this one (an earlier commit, for a same-machine A/B)."""
    result = tmp / f"{side}-{time.monotonic_ns()}.pkl"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--data", str(tmp), "--result", str(result),
           "--side-options", json.dumps(options)]
    env = dict(os.environ, **(env_extra or {}))
    if tree:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(tree).resolve()), os.environ.get("PYTHONPATH", "")])
    started = time.monotonic()
    subprocess.run(cmd, check=True, env=env)
    rows, wall, n, first = pickle.loads(result.read_bytes())
    print(f"{side}{options or ''}{env_extra or ''}{' from ' + tree if tree else ''}: {n} evaluations in {wall:.1f} s (process {time.monotonic() - started:.1f} s)", flush=True)
    return Side(rows, wall, n, first)


def side_main(args) -> int:
    tmp, options = Path(args.data), json.loads(args.side_options)
    if (tmp / "vendor").is_dir():
        sys.path.insert(0, str(tmp / "vendor"))
    out = run_peer(tmp / "trace") + (None,) if args.side == "peer" else run_ours(tmp / "ds", **options)
    Path(args.result).write_bytes(pickle.dumps(out))
    return 0


def build_inputs(root: Path, batches: list[int], planner=plan) -> tuple[list, object]:
    """Our dataset under ``root/ds`` and the same in the peer's JSON layout under ``root/trace``."""
    from fib_data.interop import export_json

    steps, families = planner(batches)
    ds = K.dataset(root / "ds", steps, families)
    export_json(ds, root / "trace")
    return steps, ds


def scaling(tmp: Path, full: dict) -> dict:
    """Each side again on one workload per definition (batch 64), so that wall = fixed + n x
    per-evaluation fits both runs: the fixed part (imports, worker start) and the steady rate over
    the full run's mix of sizes, which is what a long run gets, measured the same way for both."""
    small = tmp / "small"
    build_inputs(small, [64])
    if (tmp / "vendor").is_dir():
        (small / "vendor").symlink_to(tmp / "vendor")
    out: dict = {}
    for side, big in full.items():
        small_run = run_side(small, side)
        per = (big.wall - small_run.wall) / (big.n - small_run.n)
        out[side] = {"runs_n_wall_s": [[small_run.n, small_run.wall], [big.n, big.wall]],
                     "fixed_s": small_run.wall - per * small_run.n, "per_evaluation_ms": 1e3 * per,
                     "steady_evals_per_gpu_minute": 60 / per if per > 0 else None}
        if big.first_job_s is not None and small_run.first_job_s is not None:
            # The worker's start (mostly `import torch`, 2.7-5.3 s on these machines) varies more
            # between two runs than 200 evaluations take: fitted without it, the rate is steadier.
            out[side]["per_evaluation_ms_after_start"] = 1e3 * ((big.wall - big.first_job_s)
                                                                - (small_run.wall - small_run.first_job_s)) / (big.n - small_run.n)
    if len(out) == 2 and out["ours"]["per_evaluation_ms"] > 0:
        out["steady_ratio_ours_over_peer"] = out["peer"]["per_evaluation_ms"] / out["ours"]["per_evaluation_ms"]
        if out["ours"].get("per_evaluation_ms_after_start"):
            out["steady_ratio_ours_after_start_over_peer"] = (out["peer"]["per_evaluation_ms"]
                                                              / out["ours"]["per_evaluation_ms_after_start"])
    return out


def rounds(tmp: Path, peer: Side, ours: Side, n: int) -> dict:
    """Whole-run walls of ``n`` rounds, the first being the runs already made (peer, then ours);
    later rounds alternate which side goes first, so drift over the call and order effects
    (a side running right after the other) fall on both. The ratio of each round's walls, and
    their median, is the figure to quote: single runs on one machine moved by up to 25%."""
    walls = [[peer.wall, ours.wall]]
    for r in range(1, n):
        order = ["ours", "peer"] if r % 2 else ["peer", "ours"]
        got = {side: run_side(tmp, side).wall for side in order}
        walls.append([got["peer"], got["ours"]])
    ratios = [p / o for p, o in walls]
    return {"walls_peer_ours_s": walls, "ratios": ratios, "median_ratio": statistics.median(ratios),
            "median_wall_peer_s": statistics.median(p for p, _ in walls),
            "median_wall_ours_s": statistics.median(o for _, o in walls)}


def hold_figures(rows: dict) -> dict:
    """Per-row medians of what each timed call costs the GPU, and timed calls (all, unheld)."""
    out: dict = {}
    for key in ("host_enqueue_ms", "hold_ms"):
        found = sorted(r[key] for r in rows.values() if r.get(key))
        if found:
            out[f"{key}_median_p90"] = [statistics.median(found), found[int(0.9 * (len(found) - 1))]]
    kinds = [r.get("hold") for r in rows.values() if r.get("hold")]
    if kinds:
        out["hold_kinds"] = {k: kinds.count(k) for k in set(kinds)}
    reps = sorted(r["reps"] for r in rows.values() if r.get("reps"))
    if reps:
        out["timed_calls"] = {"median": statistics.median(reps), "min": reps[0], "max": reps[-1], "total": sum(reps),
                              "unheld": sum(r.get("unheld") or 0 for r in rows.values())}
    return out


def self_agreement(a: dict, b: dict) -> dict | None:
    """Run b against run a of ours, pair by pair: how much a change of settings moved the medians."""
    return ratio_stats([b[k]["latency_ms"] / v["latency_ms"] for k, v in a.items()
                        if k in b and v["latency_ms"] and b[k]["latency_ms"]], "median_ratio")


def ratio_stats(ratios: list[float], median_key: str) -> dict | None:
    if not ratios:
        return None
    dev = sorted(abs(r - 1) for r in ratios)
    return {"pairs": len(ratios), median_key: statistics.median(ratios),
            "median_abs_diff_pct": 100 * statistics.median(dev), "within_3pct": sum(d <= 0.03 for d in dev) / len(dev),
            "p90_abs_diff_pct": 100 * dev[int(0.9 * (len(dev) - 1))]}


def agreement(ours: dict, peer: dict, floor_ms: float = 0.0) -> dict | None:
    """Per-pair ours/peer latency ratios for pairs both PASSED whose peer latency >= floor_ms."""
    ratios = []
    for key, mine in ours.items():
        theirs = peer.get(key)
        if (theirs and mine["latency_ms"] and theirs["latency_ms"] and theirs["latency_ms"] >= floor_ms
                and mine["status"] == theirs["status"] == "PASSED"):
            ratios.append(mine["latency_ms"] / theirs["latency_ms"])
    return ratio_stats(ratios, "median_ratio_ours_over_peer")


def phase_totals(rows) -> dict:
    totals: dict[str, float] = {}
    for r in rows:
        for k, v in r["phases"].items():
            totals[k] = totals.get(k, 0.0) + v
    return totals


def phases_by_group(rows: dict) -> dict:
    """Phase totals per definition, and per latency tercile (where small and large calls' time goes)."""
    groups: dict[str, list] = {}
    for r in rows.values():
        groups.setdefault(r.get("definition") or "?", []).append(r)
    timed = sorted((r for r in rows.values() if r.get("latency_ms")), key=lambda r: r["latency_ms"])
    third = max(len(timed) // 3, 1)
    for k, part in enumerate((timed[:third], timed[third:2 * third], timed[2 * third:])):
        if part:
            groups[f"latency {part[0]['latency_ms']:.3g}-{part[-1]['latency_ms']:.3g} ms"] = part
    return {name: {"evaluations": len(part)} | {k: round(v, 3) for k, v in phase_totals(part).items()}
            for name, part in groups.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 batch sizes instead of 20")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-launch", action="store_true", help="skip the --no-hold run of ours")
    parser.add_argument("--json", default="vs_peer.json", help="report file name under $OUT")
    parser.add_argument("--ab-warmup", type=float, default=None,
                        help="also run ours with this warm-up (ms) and compare it pair by pair with the default")
    parser.add_argument("--baseline", metavar="TREE",
                        help="also run ours from this checkout (an earlier commit) in the same call: a same-machine A/B")
    parser.add_argument("--ab-env", metavar="KEY=VALUE",
                        help="also run ours with this environment variable set (e.g. FIB_HOLD=spin) in the same call")
    parser.add_argument("--large", action="store_true",
                        help="only large GEMMs (LARGE), where the peer's per-call host overhead is a small share: "
                             "latency agreement per pair")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run both sides this many times in all, alternating which goes first; "
                             "report each round's throughput ratio and the median")
    parser.add_argument("--scaling", action="store_true",
                        help="also run each side on one workload per definition: fixed cost and steady rate per side")
    parser.add_argument("--side", choices=["peer", "ours"], help=argparse.SUPPRESS)  # one side, in a child
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--side-options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return side_main(args)
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        steps, ds = build_inputs(tmp, BATCHES[::4] if args.quick else BATCHES, plan_large if args.large else plan)
        report["evaluations_planned"] = ds.count("solutions") and sum(
            len(a) * sum(1 for s in ds.read("solutions").to_pylist() if s["definition"] == d["name"])
            for d, a in steps)
        peer = ours = None
        warm_jit()
        import torch  # noqa: F401  (both sides then find its files in the page cache)

        if not args.skip_peer:
            try:
                report["vendored"] = vendor_wheels(tmp / "vendor")
                peer = run_side(tmp, "peer")
            except Exception:
                traceback.print_exc()
                report["peer_error"] = traceback.format_exc()[-1500:]
        ours = ours_launch = None
        try:
            ours = run_side(tmp, "ours")
            if args.rounds > 1 and peer:
                report["rounds"] = rounds(tmp, peer, ours, args.rounds)
            if args.baseline:
                base = run_side(tmp, "ours", tree=args.baseline)
                report["baseline"] = {"tree": args.baseline, "wall_s": base.wall, "evaluations": base.n,
                                      "wall_ratio_baseline_over_ours": base.wall / ours.wall,
                                      "phase_seconds": phase_totals(base.rows.values()),
                                      "latency_vs_ours": self_agreement(ours.rows, base.rows)}
            if args.ab_env:
                key, _, value = args.ab_env.partition("=")
                other = run_side(tmp, "ours", env_extra={key: value})
                report["ab_env"] = {"env": args.ab_env, "wall_s": other.wall, "evaluations": other.n,
                                    "wall_ratio_env_over_ours": other.wall / ours.wall,
                                    "phase_seconds": phase_totals(other.rows.values()),
                                    "latency_vs_ours": self_agreement(ours.rows, other.rows),
                                    **hold_figures(other.rows)}
            if not args.skip_launch:
                ours_launch = run_side(tmp, "ours", hold=False)
            if args.ab_warmup is not None:
                other = run_side(tmp, "ours", warmup_ms=args.ab_warmup)
                again = run_side(tmp, "ours")  # the same settings again: the run-to-run noise floor
                report["ab_warmup"] = {"warmup_ms": args.ab_warmup, "wall_s": other.wall,
                                       "latency_vs_default": self_agreement(ours.rows, other.rows),
                                       "default_rerun_wall_s": again.wall,
                                       "default_rerun_vs_default": self_agreement(ours.rows, again.rows)}
        except Exception:
            traceback.print_exc()
            report["ours_error"] = traceback.format_exc()[-1500:]
        if args.scaling and not args.quick:
            try:
                report["scaling"] = scaling(tmp, {k: v for k, v in (("peer", peer), ("ours", ours)) if v})
            except Exception:
                traceback.print_exc()
                report["scaling_error"] = traceback.format_exc()[-1500:]
    for name, res in (("peer", peer), ("ours", ours)):
        if res:
            rows, wall, n = res.rows, res.wall, res.n
            statuses: dict[str, int] = {}
            for r in rows.values():
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            report[name] = {"evaluations": n, "wall_s": wall, "evals_per_gpu_minute": n / (wall / 60),
                            "statuses": statuses}
    if ours:
        report["ours"]["phase_seconds"] = phase_totals(ours.rows.values())
        report["ours"]["phase_seconds_by_group"] = phases_by_group(ours.rows)
        report["ours"].update(hold_figures(ours.rows))
    if peer and ours:
        report["agreement"] = {"all": agreement(ours.rows, peer.rows),
                               "peer_latency_at_least_0.2ms": agreement(ours.rows, peer.rows, 0.2)}
        if ours_launch:
            # Same method as the peer (host launch latency inside the interval): this is what
            # the two executors should agree on; the default (held) numbers exclude that latency.
            report["agreement"]["ours_no_hold_all"] = agreement(ours_launch.rows, peer.rows)
            report["agreement"]["ours_no_hold_peer_latency_at_least_0.2ms"] = agreement(ours_launch.rows, peer.rows, 0.2)
            enq = [r["host_enqueue_ms"] for r in ours.rows.values() if r.get("host_enqueue_ms")]
            if enq:
                report["agreement"]["median_host_enqueue_ms"] = statistics.median(enq)
        report["pairs"] = [{"solution": sol, "workload": uuid, "definition": mine.get("definition"),
                            "ours_ms": mine["latency_ms"], "peer_ms": (peer.rows.get((sol, uuid)) or {}).get("latency_ms"),
                            "ours_no_hold_ms": (ours_launch.rows.get((sol, uuid)) or {}).get("latency_ms")
                            if ours_launch else None}
                           for (sol, uuid), mine in sorted(ours.rows.items())]
        report["throughput_ratio_ours_over_peer"] = (report["ours"]["evals_per_gpu_minute"]
                                                     / report["peer"]["evals_per_gpu_minute"])
    print(json.dumps({k: v for k, v in report.items() if not k.endswith("_error") and k != "pairs"}, indent=2,
                     default=str))
    if args.large:
        for p in report.get("pairs", []):
            print(f"{p['solution']:40} {p['workload'][:8]} ours {p['ours_ms']} no-hold {p['ours_no_hold_ms']} "
                  f"peer {p['peer_ms']}")
    for k in ("peer_error", "ours_error"):
        if k in report:
            print(f"{k}:\n{report[k]}")
    K.save_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
