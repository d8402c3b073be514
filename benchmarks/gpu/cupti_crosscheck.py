"""Our executor's median latency vs kernel time measured by CUPTI, for memory- and compute-bound kernels.

    python benchmarks/gpu/cupti_crosscheck.py        # ~2 min on an H100 (flashinfer JIT included); logs to $OUT

"ours" is the latency `fib bench` records for a curated (definition, solution, workload): spawn
worker, CUDA events on the stream, L2 flushed and a GPU hold before each call, inputs rotated.
"ours, no hold" is the same with ``--no-hold`` (the host's launch latency is then inside the
interval, as in the peer's timer). The references, both CUPTI activity records:
  - profiler: torch.profiler (Kineto on CUPTI) kernel spans, first kernel start to last kernel
    end of each call, in a loop shaped like ours (flush, GPU spin, call, synchronize), on the same
    inputs; and "k. sum", the sum of each call's kernel durations (no gaps between kernels);
  - flashinfer: flashinfer.testing.bench_gpu_time_with_cupti (cold L2), when cupti-python is there.
Target: ours within 3% of CUPTI.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kernels as K  # noqa: E402

# (label, kind, definition, axes, solution suffixes)
CASES = [
    ("rmsnorm h4096 x16384", "memory", "rmsnorm_h4096", {"batch_size": 16384}, ["flashinfer", "triton", "cuda"]),
    ("paged decode b64 kv4096", "memory", "gqa_paged_decode_h32_kv8_d128_ps16", {"batch_size": 64, "kv_len": 4096},
     ["triton", "flashinfer"]),
    ("gemm 4096x4096x4096 bf16", "compute", "gemm_n4096_k4096", {"M": 4096}, ["torch"]),
    ("gemm 2048x28672x4096 bf16", "compute", "gemm_n28672_k4096", {"M": 2048}, ["torch"]),
]


if K.no_jit():
    CASES = [(a, b, c, d, [s for s in sols if s not in ("flashinfer", "cuda")]) for a, b, c, d, sols in CASES]


def build(root: Path):
    from fib_data.curated.catalog import by_name
    from fib_data.curated.solutions import solutions
    from fib_data.curated.workloads import make_workload
    from fib_data.dataset import Dataset

    ds = Dataset.create(root, card=False)
    catalog = by_name()
    defs = [catalog[name] for _, _, name, _, _ in CASES]
    workloads = []
    for _, _, name, axes, _ in CASES:
        d = catalog[name]
        kv = axes.get("kv_len")
        kv_lens = [kv] * axes["batch_size"] if kv else None
        workloads.append(make_workload(d, {k: v for k, v in axes.items() if k != "kv_len"}, ds.blobs,
                                       kv_lens=kv_lens))
    wanted = {f"{name}__{s}" for _, _, name, _, sols in CASES for s in sols}
    sols = [s for s in solutions(defs) if s["name"] in wanted]
    ds.replace("definitions", defs)
    ds.replace("workloads", workloads)
    ds.replace("solutions", sols)
    return ds, {w["definition"]: w for w in workloads}, {s["name"]: s for s in sols}


def ours(root: Path, hold: bool) -> dict:
    from fib_data.executor.bench import BenchOptions, run_bench

    result = run_bench(root, devices=["cuda:0"], options=BenchOptions(trials=1, reps=100, hold=hold,
                                                                      pool_bytes=4 << 30))
    return {r["solution"]: r for r in result["rows"]}


def _call(definition, workload, solution, blobs):
    import torch

    from fib_data.executor import build_solution, make_inputs
    from fib_data.executor.correctness import poisoned_outputs
    from fib_data.executor.inputs import axis_values

    fn = build_solution(solution, "cuda:0")
    args = list(make_inputs(definition, workload, blobs, "cuda:0", seed=7).values())
    if solution["destination_passing_style"]:
        args += poisoned_outputs(definition, axis_values(definition, workload), "cuda:0")
    torch.cuda.synchronize()
    return lambda: fn(*args)


def profiler_ms(call, reps: int = 60) -> tuple[float, float, list[str]]:
    """Median per-call kernel span (first kernel start to last kernel end) and kernel-time sum.

    Each call follows a flush and a GPU spin long enough for the host to enqueue the whole call,
    then a synchronize: our loop's shape. Without the spin, a call of several kernels (a GEMM's
    memset, then the GEMM) has the host's launch gap between them inside its span whenever the
    host is slower than the flush, which is kernel time by no definition.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda:0")
    for _ in range(5):
        call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            flush.bitwise_not_()  # a kernel name nothing else uses marks each call's start
            torch.cuda._sleep(1_000_000)  # ~0.5 ms: the host enqueues the call meanwhile
            call()
            torch.cuda.synchronize()
    kernels = sorted((e for e in prof.events() if e.device_type.name == "CUDA" and "spin_kernel" not in e.name),
                     key=lambda e: e.time_range.start)
    spans, sums, current, names = [], [], [], set()
    for e in kernels + [None]:
        if e is None or "bitwise_not" in e.name:
            if current:
                spans.append(max(k.time_range.end for k in current) - current[0].time_range.start)
                sums.append(sum(k.time_range.end - k.time_range.start for k in current))
            current = []
        else:
            current.append(e)
            names.add(e.name[:80])
    return statistics.median(spans) / 1e3, statistics.median(sums) / 1e3, sorted(names)


def flashinfer_cupti_ms(call) -> tuple[float | None, str]:
    import warnings

    from flashinfer.testing.utils import bench_gpu_time_with_cupti

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        times = bench_gpu_time_with_cupti(call, dry_run_iters=10, repeat_iters=100, cold_l2_cache=True)
    fell_back = any("cupti" in str(w.message).lower() for w in caught)
    return statistics.median(times), ("events (no CUPTI)" if fell_back else "cupti")


def main() -> int:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        ds, workloads, sols = build(root)
        runs = {}
        for hold in (True, False):
            try:
                runs[hold] = ours(root, hold)
            except Exception:
                traceback.print_exc()
                runs[hold] = {}
            if hold:  # the second run must not be skipped as already done
                for p in (root / "data" / "evaluations").glob("run-*.parquet"):
                    p.rename(Path(tmp) / p.name)
        defs = {d["name"]: d for d in ds.read("definitions").to_pylist()}
        for label, kind, name, _, suffixes in CASES:
            for suffix in suffixes:
                sol_name = f"{name}__{suffix}"
                item = {"kernel": label, "kind": kind, "solution": sol_name}
                results.append(item)
                row = runs[True].get(sol_name)
                if row is None:
                    item["error"] = "not evaluated"
                    continue
                extra = __import__("json").loads(row["correctness_extra"] or "{}")
                item.update(status=row["status"], ours_ms=row["latency_ms"], flags=row["flags"],
                            host_enqueue_ms=extra.get("host_enqueue_ms"), hold_ms=extra.get("hold_ms"),
                            ours_nohold_ms=(runs[False].get(sol_name) or {}).get("latency_ms"))
                try:
                    blobs = {sha: ds.blobs.get_bytes(sha) for sha in
                             {i["sha256"] for i in workloads[name]["inputs"] if i["type"] == "safetensors"}}
                    call = _call(defs[name], workloads[name], sols[sol_name], blobs)
                    item["profiler_ms"], item["kernel_sum_ms"], item["kernels"] = profiler_ms(call)
                    try:
                        if K.no_jit():
                            raise RuntimeError("skipped (FIB_NO_JIT)")
                        item["fi_cupti_ms"], item["fi_method"] = flashinfer_cupti_ms(call)
                    except Exception as exc:
                        item["fi_error"] = f"{type(exc).__name__}: {exc}"[:300]
                except Exception as exc:
                    traceback.print_exc()
                    item["error"] = f"{type(exc).__name__}: {exc}"[:300]
                for key in ("profiler_ms", "kernel_sum_ms", "fi_cupti_ms"):
                    if item.get(key) and item.get("ours_ms"):
                        item[key.replace("_ms", "_diff_pct")] = 100 * (item["ours_ms"] / item[key] - 1)
    print(f"{'kernel':27} {'solution':10} {'ours':>8} {'no hold':>8} {'profiler':>8} {'diff%':>6} "
          f"{'k. sum':>8} {'diff%':>6} {'fi cupti':>8} {'diff%':>6} {'enqueue':>8}")
    for r in results:
        f = lambda k, w=8, p=4: f"{r[k]:{w}.{p}f}" if isinstance(r.get(k), float) else f"{'-':>{w}}"
        print(f"{r['kernel']:27} {r['solution'].rsplit('__', 1)[1]:10} {f('ours_ms')} {f('ours_nohold_ms')} "
              f"{f('profiler_ms')} {f('profiler_diff_pct', 6, 2)} {f('kernel_sum_ms')} {f('kernel_sum_diff_pct', 6, 2)} "
              f"{f('fi_cupti_ms')} {f('fi_cupti_diff_pct', 6, 2)} "
              f"{f('host_enqueue_ms')}  {r.get('status', '')} {r.get('error', '')}")
        if r.get("kernels"):
            print("    kernels:", "; ".join(r["kernels"])[:300])
    K.save_json("cupti_crosscheck.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
