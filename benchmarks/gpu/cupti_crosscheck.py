"""Our executor's median latency vs kernel time measured by CUPTI, for memory- and compute-bound kernels.

    python benchmarks/gpu/cupti_crosscheck.py        # ~1 min on an H100; logs to $OUT if set

"ours" is the latency `fib bench` records (spawn worker, CUDA events on the stream, L2 flushed
before each call, inputs rotated). It is compared with (a) flashinfer.testing.bench_gpu_time with
CUPTI (cold L2) when CUPTI is usable, and (b) torch.profiler (Kineto/CUPTI) kernel spans: first
kernel start to last kernel end of each call, with a distinctive flush kernel between calls.
Target: within 3%.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kernels as K  # noqa: E402

CASES = [  # (label, kind, definition, axes, solution family, preferred solutions)
    ("rmsnorm h4096 x16384", "memory", K.rmsnorm(4096), {"batch_size": 16384}, "rmsnorm",
     ["flashinfer_rmsnorm", "torch_rms_norm"]),
    ("decode attention b16 kv4096", "memory", K.decode_attention(32, 8, 128),
     {"batch_size": 16, "kv_len": 4096}, "attention", ["torch_sdpa"]),
    ("gemm 4096^3 bf16", "compute", K.gemm(4096, 4096), {"m": 4096}, "gemm", ["torch_matmul"]),
]


def ours(root: Path) -> dict[str, dict]:
    from fib_data.executor.bench import BenchOptions, run_bench

    plan = [(d, [a]) for _, _, d, a, _, _ in CASES]
    families = {d["name"]: f for _, _, d, _, f, _ in CASES}
    ds = K.dataset(root, plan, families)
    wanted = []
    names = {s["name"] for s in ds.read("solutions").to_pylist()}
    for _, _, d, _, _, prefs in CASES:
        wanted.append(next(f"{d['name']}__{p}" for p in prefs if f"{d['name']}__{p}" in names))
    result = run_bench(root, solutions=wanted, devices=["cuda:0"],
                       options=BenchOptions(trials=1, reps=100, warmup_ms=50.0, pool_bytes=4 << 30))
    return {r["definition"]: r for r in result["rows"]}


def _call(definition, workload, solution):
    import torch

    from fib_data.executor import build_solution, make_inputs
    from fib_data.executor.correctness import poisoned_outputs
    from fib_data.executor.inputs import axis_values

    fn = build_solution(solution, "cuda:0")
    args = list(make_inputs(definition, workload, {}, "cuda:0", seed=7).values())
    if solution["destination_passing_style"]:
        args += poisoned_outputs(definition, axis_values(definition, workload), "cuda:0")
    torch.cuda.synchronize()
    return lambda: fn(*args)


def cupti_ms(call) -> tuple[float | None, str]:
    import inspect

    from flashinfer.testing import bench_gpu_time

    params = inspect.signature(bench_gpu_time).parameters
    kwargs = {k: v for k, v in dict(enable_cupti=True, cold_l2_cache=True, dry_run_iters=10, repeat_iters=100,
                                    use_cuda_graph=False).items() if k in params}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        times = bench_gpu_time(call, **kwargs)
    fell_back = any("cupti" in str(w.message).lower() for w in caught)
    return statistics.median(times), ("events (CUPTI unavailable)" if fell_back else "cupti")


def profiler_ms(call, reps: int = 50) -> float:
    import torch
    from torch.profiler import ProfilerActivity, profile

    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda:0")
    for _ in range(5):
        call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            flush.bitwise_not_()  # a kernel name nothing else uses marks each call's start
            call()
        torch.cuda.synchronize()
    kernels = sorted((e for e in prof.events() if e.device_type.name == "CUDA"),
                     key=lambda e: e.time_range.start)
    spans, current = [], []
    for e in kernels:
        if "bitwise_not" in e.name:
            if current:
                spans.append(max(k.time_range.end for k in current) - current[0].time_range.start)
            current = []
        else:
            current.append(e)
    if current:
        spans.append(max(k.time_range.end for k in current) - current[0].time_range.start)
    return statistics.median(spans) / 1e3


def main() -> int:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            rows = ours(Path(tmp) / "ds")
        except Exception:
            traceback.print_exc()
            rows = {}
        from fib_data.dataset import Dataset

        ds = Dataset(Path(tmp) / "ds") if rows else None
        for label, kind, definition, axes, _, _ in CASES:
            item = {"kernel": label, "kind": kind}
            results.append(item)
            try:
                row = rows[definition["name"]]
                item.update(status=row["status"], solution=row["solution"], ours_ms=row["latency_ms"],
                            flags=row["flags"])
                solution = next(s for s in ds.read("solutions").to_pylist() if s["name"] == row["solution"])
                workload = next(w for w in ds.read("workloads").to_pylist() if w["uuid"] == row["workload_uuid"])
                call = _call(definition, workload, solution)
                try:
                    item["cupti_ms"], item["cupti_method"] = cupti_ms(call)
                except Exception as exc:
                    item["cupti_error"] = f"{type(exc).__name__}: {exc}"[:300]
                item["profiler_ms"] = profiler_ms(call)
                for key in ("cupti_ms", "profiler_ms"):
                    if item.get(key) and item.get("ours_ms"):
                        item[key.replace("_ms", "_diff_pct")] = 100 * (item["ours_ms"] / item[key] - 1)
            except Exception as exc:
                traceback.print_exc()
                item["error"] = f"{type(exc).__name__}: {exc}"[:300]
    print(f"{'kernel':30} {'kind':8} {'ours ms':>9} {'cupti ms':>9} {'diff%':>7} {'prof ms':>9} {'diff%':>7}  method")
    for r in results:
        f = lambda k, w=9, p=4: f"{r[k]:{w}.{p}f}" if isinstance(r.get(k), float) else f"{'-':>{w}}"
        print(f"{r['kernel']:30} {r['kind']:8} {f('ours_ms')} {f('cupti_ms')} {f('cupti_diff_pct', 7, 2)} "
              f"{f('profiler_ms')} {f('profiler_diff_pct', 7, 2)}  {r.get('cupti_method', r.get('cupti_error', ''))}"
              + (f"  ERROR {r['error']}" if r.get("error") else ""))
    K.save_json("cupti_crosscheck.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
