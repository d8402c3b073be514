"""Dispatch overhead of fib_data.apply() per call, on CPU.

A stand-in flashinfer whose entry points do no work is patched by apply() against a small dataset
built here (curated definitions, a do-nothing solution, evaluation rows). Each line compares the
same callee reached directly and through the apply wrapper, so the difference is what apply adds:
argument conversion, the memo lookup, the call, the output bookkeeping.

    python benchmarks/bench_apply_overhead.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import timeit
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from fib_data.apply import apply, detect_hardware  # noqa: E402
from fib_data.apply.sample import evaluation_row, solution_row  # noqa: E402
from fib_data.curated.catalog import definitions  # noqa: E402
from fib_data.curated.workloads import make_workload  # noqa: E402
from fib_data.dataset import Dataset  # noqa: E402
from fib_data.executor.build import build_solution  # noqa: E402

RMS, DECODE = "rmsnorm_h4096", "gqa_paged_decode_h32_kv8_d128_ps16"
NOOP_NORM = "def run(hidden_states, weight):\n    return hidden_states\n"
NOOP_DECODE = "def run(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale):\n    return q, LSE[: q.shape[0]]\n"


def standin() -> types.ModuleType:
    """flashinfer's signatures, no work: the callee cost is ~0 so the wrapper's cost shows."""
    root, norm, decode = (types.ModuleType(n) for n in ("standin", "standin.norm", "standin.decode"))

    def rmsnorm(input, weight, eps=1e-6, out=None, enable_pdl=None):
        return input

    class BatchDecodeWithPagedKVCacheWrapper:
        def __init__(self, workspace, kv_layout="NHD"):
            self._kv_layout = kv_layout

        def plan(self, indptr, indices, last_page_len, num_qo_heads, num_kv_heads, head_dim,
                 page_size, *args, **kwargs):
            pass

        def run(self, q, paged_kv_cache, *args, out=None, lse=None, return_lse=False,
                enable_pdl=None, **kwargs):
            return q

    norm.rmsnorm = root.rmsnorm = rmsnorm
    decode.BatchDecodeWithPagedKVCacheWrapper = BatchDecodeWithPagedKVCacheWrapper
    root.norm, root.decode = norm, decode
    return root


def build(root: Path, hardware: str) -> Dataset:
    ds = Dataset.create(root, card=False)
    defs = {d["name"]: d for d in definitions() if d["name"] in (RMS, DECODE)}
    ds.replace("definitions", list(defs.values()))
    work = [make_workload(defs[RMS], {"batch_size": b}, ds.blobs) for b in (1, 8, 64, 512)]
    work += [make_workload(defs[DECODE], {}, ds.blobs, kv_lens=[64] * 8)]
    ds.replace("workloads", work)
    lse = "import torch\nLSE = torch.zeros(8, 32)\n"
    sols = [solution_row(RMS, "noop_norm", NOOP_NORM), solution_row(DECODE, "noop_decode", lse + NOOP_DECODE)]
    ds.replace("solutions", sols)
    rows = [evaluation_row(sols[0], w, "PASSED" if w is not work[3] else "INCORRECT_NUMERICAL", 0.01,
                           hardware=hardware) for w in work[:4]]
    rows.append(evaluation_row(sols[1], work[4], "PASSED", 0.02, hardware=hardware))
    ds.append("evaluations", rows, name="run-bench.parquet")
    return ds


def per_call_us(fn, calls: int) -> float:
    return min(timeit.repeat(fn, number=calls, repeat=5)) / calls * 1e6


def decode_steps(fi, wrapper, decode_fn, q, pages, last, scale, steps: int = 300,
                 layers: int = 32) -> tuple[float, float]:
    """Per-run cost when every step re-plans with a never-seen page count (a memo miss per step,
    as in a real decode loop whose sequences grow), amortised over the layers that reuse it."""
    plan_orig = vars(type(wrapper))["plan"].__wrapped__
    plans = [(torch.tensor([0, 8 + i], dtype=torch.int32), torch.arange(8 + i, dtype=torch.int32))
             for i in range(steps)]

    def direct():
        for indptr, indices in plans:
            plan_orig(wrapper, indptr, indices, last, 32, 8, 128, 16)
            for _ in range(layers):
                decode_fn(q[:1], pages, pages, indptr, indices, last[:1], scale)

    def patched():
        for indptr, indices in plans:
            wrapper.plan(indptr, indices, last[:1], 32, 8, 128, 16)
            for _ in range(layers):
                wrapper.run(q[:1], (pages, pages))

    return (min(timeit.repeat(f, number=1, repeat=3)) / (steps * layers) * 1e6 for f in (direct, patched))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    calls = parser.parse_args().calls
    torch.set_num_threads(1)
    hardware = detect_hardware()
    fi = standin()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("FIB_DATA_CACHE", str(Path(tmp) / "cache"))
        ds = build(Path(tmp) / "ds", hardware)
        x, w = torch.randn(8, 4096).bfloat16(), torch.randn(4096).bfloat16()
        big = torch.randn(512, 4096).bfloat16()
        pages = torch.randn(64, 16, 8, 128).bfloat16()
        q = torch.randn(8, 32, 128).bfloat16()
        indptr = torch.arange(0, 33, 4, dtype=torch.int32)
        indices = torch.arange(32, dtype=torch.int32)
        last = torch.full((8,), 16, dtype=torch.int32)
        original_norm = fi.rmsnorm
        original_run = fi.decode.BatchDecodeWithPagedKVCacheWrapper.run
        wrapper = fi.decode.BatchDecodeWithPagedKVCacheWrapper(None)
        with apply(ds, hardware=hardware, module=fi) as handle:
            wrapper.plan(indptr, indices, last, 32, 8, 128, 16)
            fi.rmsnorm(x, w, eps=1e-5), fi.rmsnorm(big, w, eps=1e-5), wrapper.run(q, (pages, pages))
            built = {r["name"]: build_solution(r) for r in ds.read("solutions").to_pylist()}
            norm_fn, decode_fn = built["noop_norm"], built["noop_decode"]
            scale = 1 / math.sqrt(128)
            lines = [
                ("rmsnorm -> solution", lambda: norm_fn(x, w), lambda: fi.rmsnorm(x, w, eps=1e-5)),
                ("rmsnorm -> fallback (no correct solution)", lambda: original_norm(big, w, eps=1e-5),
                 lambda: fi.rmsnorm(big, w, eps=1e-5)),
                ("rmsnorm -> fallback (eps mismatch)", lambda: original_norm(x, w),
                 lambda: fi.rmsnorm(x, w)),
                ("decode run -> solution", lambda: decode_fn(q, pages, pages, indptr, indices, last, scale),
                 lambda: wrapper.run(q, (pages, pages))),
            ]
            print(f"{'path':44s} {'direct us':>10s} {'apply us':>10s} {'overhead us':>12s}")
            for name, direct, patched in lines:
                d, p = per_call_us(direct, calls), per_call_us(patched, calls)
                print(f"{name:44s} {d:10.2f} {p:10.2f} {p - d:12.2f}")
            d, p = decode_steps(fi, wrapper, decode_fn, q, pages, last, scale)
            print(f"{'decode step: plan (new shape) + 32 runs, per run':44s} {d:10.2f} {p:10.2f} {p - d:12.2f}")
            print(f"(min of 5 x {calls} calls; torch {torch.__version__}, {hardware}; "
                  f"patched {len(handle.sites)} entry points)")
            actions = {r["action"] for r in handle.log_rows()}
            assert actions == {"substitute", "fallback"}, handle.explain()
        assert fi.rmsnorm is original_norm and fi.decode.BatchDecodeWithPagedKVCacheWrapper.run is original_run


if __name__ == "__main__":
    main()
