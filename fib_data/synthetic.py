"""Synthetic datasets with realistic field sizes, built column-wise (1M evaluations in seconds).

``synthetic_tables(n_defs, n_workloads, n_solutions, seed)`` gives schema-exact Arrow tables:
n_defs GEMM definitions, n_workloads workloads and n_solutions solutions per definition, and one
evaluation per (solution, workload) pair (n_defs * n_workloads * n_solutions rows). Solutions
carry a few KB of source each, evaluations a log of a few hundred bytes (a traceback when they
fail), a full environment and timing configuration. Everything derives from ``seed``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from .hashing import environment_hash, solution_hash
from .schema import schema_of

_STATUS_P = {"PASSED": 0.86, "INCORRECT_NUMERICAL": 0.04, "INCORRECT_SHAPE": 0.01,
             "INCORRECT_DTYPE": 0.01, "RUNTIME_ERROR": 0.04, "COMPILE_ERROR": 0.03, "TIMEOUT": 0.01}

_REFERENCE = '''import torch


@torch.no_grad()
def run(A, B):
    """C = A @ B.T with fp32 accumulation; N={n}, K={k} come from {model}."""
    C = torch.matmul(A.to(torch.float32), B.to(torch.float32).T)
    return C.to(A.dtype)
'''

_KERNEL = '''import torch
import triton
import triton.language as tl


@triton.autotune(
    configs=[
        triton.Config({{"BLOCK_M": {bm}, "BLOCK_N": {bn}, "BLOCK_K": {bk}, "GROUP_M": 8}},
                      num_stages={stages}, num_warps={warps}),
        triton.Config({{"BLOCK_M": 64, "BLOCK_N": {bn}, "BLOCK_K": {bk}, "GROUP_M": 8}},
                      num_stages=4, num_warps=4),
    ],
    key=["M"],
)
@triton.jit
def _gemm_kernel_{tag}(a_ptr, b_ptr, c_ptr, M, N: tl.constexpr, K: tl.constexpr,
                  stride_am, stride_ak, stride_bn, stride_bk, stride_cm, stride_cn,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                  GROUP_M: tl.constexpr):
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_pid_n
    first_m = (pid // group) * GROUP_M
    size_m = min(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % size_m)
    pid_n = (pid % group) // size_m
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    a = a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak
    b = b_ptr + offs_n[None, :] * stride_bn + offs_k[:, None] * stride_bk
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        mask_k = offs_k[None, :] < K - k * BLOCK_K
        x = tl.load(a, mask=(offs_m[:, None] < M) & mask_k, other=0.0)
        y = tl.load(b, mask=mask_k.T & (offs_n[None, :] < N), other=0.0)
        acc = tl.dot(x, y, acc)  # variant {tag}: {note}
        a += BLOCK_K * stride_ak
        b += BLOCK_K * stride_bk
    c = c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    tl.store(c, acc.to(c_ptr.dtype.element_ty), mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


def run(A, B, C):
    M, K = A.shape
    N = B.shape[0]
    grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]),)
    _gemm_kernel_{tag}[grid](A, B, C, M, N, K, A.stride(0), A.stride(1), B.stride(0), B.stride(1),
                        C.stride(0), C.stride(1))
    return C
'''

_PASSED_LOG = ("[fib] building {sol} (triton {triton}) ... done in {build:.2f} s\n"
               "[fib] correctness: {trials} trials, max_abs={abs_err:.3e} max_rel={rel_err:.3e}\n"
               "[fib] timing: cuda_graph, {reps} reps x {sets} input sets, L2 flushed, "
               "median {lat:.4f} ms (iqr {iqr:.4f} ms), reference {ref:.4f} ms\n")
_FAILED_LOG = ("[fib] building {sol} (triton {triton}) ... done in {build:.2f} s\n"
               "Traceback (most recent call last):\n"
               '  File "/opt/fib/executor/worker.py", line 212, in evaluate\n'
               "    out = fn(*inputs, *outputs)\n"
               '  File "/tmp/fib-build/{hash}/main.py", line 64, in run\n'
               "    _gemm_kernel[grid](A, B, C, M, N, K, A.stride(0), A.stride(1), B.stride(0))\n"
               '  File "/usr/lib/python3/site-packages/triton/runtime/jit.py", line 345, in run\n'
               "    kernel = self.compile(src, target=target, options=options.__dict__)\n"
               "{error}: {status} at M={m}: {detail}\n")
_ERRORS = ["RuntimeError", "triton.compiler.errors.CompilationError", "torch.OutOfMemoryError",
           "AssertionError", "ValueError"]

_ENVIRONMENTS = [
    {"hardware": "NVIDIA H100 80GB HBM3", "gpu": "NVIDIA H100 80GB HBM3", "driver": "570.124.06",
     "cuda": "12.8", "torch": "2.8.0+cu128", "triton": "3.4.0", "flashinfer": "0.4.1",
     "python": "3.12.3", "other_libs": [{"name": "cutlass", "version": "4.1.0"}]},
    {"hardware": "NVIDIA B200", "gpu": "NVIDIA B200", "driver": "575.57.08", "cuda": "12.9",
     "torch": "2.8.0+cu129", "triton": "3.4.0", "flashinfer": "0.4.1", "python": "3.12.3",
     "other_libs": [{"name": "cutlass", "version": "4.1.0"}]},
    {"hardware": "NVIDIA H200", "gpu": "NVIDIA H200", "driver": "570.124.06", "cuda": "12.8",
     "torch": "2.8.0+cu128", "triton": "3.4.0", "flashinfer": "0.4.1", "python": "3.12.3",
     "other_libs": []},
]
_SHAPES = [(4096, 4096), (6144, 4096), (14336, 4096), (4096, 14336), (28672, 4096),
           (8192, 8192), (1024, 8192), (57344, 8192), (8192, 28672), (7168, 2048)]
_MODELS = ["llama-3.1-8b", "llama-3.1-70b", "qwen3-30b-a3b", "deepseek-v3"]


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def definitions(n_defs: int) -> list[dict]:
    rows = []
    for i in range(n_defs):
        n, k = _SHAPES[i % len(_SHAPES)]
        model = _MODELS[i % len(_MODELS)]
        name = f"gemm_n{n}_k{k}" + (f"_v{i // len(_SHAPES)}" if i >= len(_SHAPES) else "")
        rows.append({
            "name": name, "op_type": "gemm", "tags": [f"model:{model}", "status:verified"],
            "description": f"GEMM C = A @ B.T, N={n}, K={k}; a projection of {model}.",
            "axes": [{"name": "M", "type": "var", "value": None, "description": "Tokens."},
                     {"name": "N", "type": "const", "value": n, "description": None},
                     {"name": "K", "type": "const", "value": k, "description": None}],
            "inputs": [{"name": "A", "shape": ["M", "K"], "dtype": "bfloat16", "description": None},
                       {"name": "B", "shape": ["N", "K"], "dtype": "bfloat16", "description": None}],
            "outputs": [{"name": "C", "shape": ["M", "N"], "dtype": "bfloat16",
                         "description": None}],
            "reference": _REFERENCE.format(n=n, k=k, model=model),
            "constraints": ["M >= 1"],
            "tolerances": [{"dtype": "bfloat16", "atol": 1e-2, "rtol": 1e-2, "reason": "bf16"}],
        })
    return rows


def workloads(defs: list[dict], n_workloads: int, rng: np.random.Generator) -> list[dict]:
    rows = []
    for d in defs:
        for j in range(n_workloads):
            rows.append({
                "uuid": _uuid(rng), "definition": d["name"],
                "axes": [{"name": "M", "value": int(j + 1)}],
                "inputs": [{"name": "A", "type": "random", "value": None, "sha256": None,
                            "tensor_key": None},
                           {"name": "B", "type": "random", "value": None, "sha256": None,
                            "tensor_key": None}],
                "weight": int(rng.integers(1, 5000)), "source_kind": "synthetic",
                "source_file": None, "model": d["tags"][0][6:], "engine": "sglang",
                "observed_at": None, "measured_axes": ["M"], "bucketing": "exact", "notes": None,
            })
    return rows


def solutions(defs: list[dict], n_solutions: int, rng: np.random.Generator) -> list[dict]:
    authors = ["gpt-5", "claude-opus-4", "gemini-2.5-pro", "flashinfer", "baseline"]
    rows = []
    for d in defs:
        for j in range(n_solutions):
            tag = f"{d['name']}_{j}"
            source = _KERNEL.format(
                bm=int(rng.choice([64, 128, 256])), bn=int(rng.choice([64, 128, 256])),
                bk=int(rng.choice([32, 64])), stages=int(rng.integers(2, 6)),
                warps=int(rng.choice([4, 8])), tag=tag,
                note=" ".join(rng.choice(["swizzled", "split-k", "persistent", "tma", "wgmma",
                                          "epilogue-fused", "pingpong"], 3)))
            row = {"name": f"{tag}_triton", "definition": d["name"],
                   "author": authors[j % len(authors)], "description": f"Triton GEMM variant {j}.",
                   "language": "triton", "target_hardware": ["NVIDIA_H100", "NVIDIA_B200"],
                   "entry_point": "main.py::run", "destination_passing_style": True,
                   "binding": None, "dependencies": ["torch", "triton"],
                   "sources": [{"path": "main.py", "content": source}]}
            row["content_hash"] = solution_hash(row)
            rows.append(row)
    return rows


def evaluations(defs: list[dict], wls: list[dict], sols: list[dict], n_workloads: int,
                n_solutions: int, rng: np.random.Generator) -> pa.Table:
    """One row per (definition, workload, solution), columns built with numpy."""
    n_defs = len(defs)
    n = n_defs * n_workloads * n_solutions
    d_idx = np.repeat(np.arange(n_defs), n_workloads * n_solutions)
    w_idx = np.repeat(np.arange(n_defs * n_workloads), n_solutions)
    s_idx = d_idx * n_solutions + np.tile(np.arange(n_solutions), n_defs * n_workloads)
    m = np.array([w["axes"][0]["value"] for w in wls])[w_idx]
    statuses = np.array(list(_STATUS_P))
    status = statuses[rng.choice(len(statuses), n, p=list(_STATUS_P.values()))]
    passed = status == "PASSED"
    has_errors = passed | (status == "INCORRECT_NUMERICAL")
    ref = 0.004 + m * 1.1e-4 * rng.lognormal(0, 0.05, n)
    lat = ref / rng.lognormal(0.1, 0.4, n)
    abs_err = rng.lognormal(-9, 1.5, n)
    env_idx = s_idx % len(_ENVIRONMENTS)

    def opt(values, mask):
        return pa.array(values, mask=~mask)

    env_hashes = np.array([environment_hash(e) for e in _ENVIRONMENTS])
    names = np.array([s["name"] for s in sols])
    hashes = np.array([s["content_hash"] for s in sols])
    columns = {
        "run_id": pa.array(np.char.add("synthetic-", (s_idx % 7).astype(str))),
        "definition": pa.array(np.array([d["name"] for d in defs])[d_idx]),
        "workload_uuid": pa.array(np.array([w["uuid"] for w in wls])[w_idx]),
        "solution": pa.array(names[s_idx]),
        "solution_hash": pa.array(hashes[s_idx]),
        "status": pa.array(status),
        "max_absolute_error": opt(abs_err, has_errors),
        "max_relative_error": opt(abs_err * rng.lognormal(2, 1, n), has_errors),
        "latency_ms": opt(lat, passed),
        "reference_latency_ms": opt(ref, passed),
        "speedup_factor": opt(ref / lat, passed),
        "latency_iqr_ms": opt(lat * rng.uniform(0.005, 0.05, n), passed),
        "reference_latency_iqr_ms": opt(ref * rng.uniform(0.005, 0.05, n), passed),
        "achieved_gbps": opt(m * 4096 * 6 / lat / 1e6, passed),
        "achieved_tflops": opt(2.0 * m * 4096 * 4096 / lat / 1e9, passed),
        "bandwidth_fraction": opt(m * 4096 * 6 / lat / 1e6 / 3350, passed),
        "compute_fraction": opt(2.0 * m * 4096 * 4096 / lat / 1e9 / 989, passed),
        "timing": _timing(n),
        "device": pa.array(np.full(n, "cuda:0")),
        "environment": pa.array([_ENVIRONMENTS[i] for i in range(len(_ENVIRONMENTS))],
                                type=schema_of("evaluations").field("environment").type).take(
                                    pa.array(env_idx)),
        "environment_hash": pa.array(env_hashes[env_idx]),
        "flags": pa.nulls(n, pa.list_(pa.string())),
        "timestamp": pa.array(_timestamps(n, rng), type=pa.timestamp("us", tz="UTC")),
        "log": pa.array(_logs(status, names[s_idx], hashes[s_idx], m, lat, ref, abs_err, rng)),
        "correctness_extra": opt(np.full(n, json.dumps({"trials": 3, "nan_outputs": 0})),
                                 has_errors),
    }
    schema = schema_of("evaluations")
    return pa.Table.from_arrays([columns[f.name].cast(f.type) for f in schema], schema=schema)


def _timing(n: int) -> pa.Array:
    t = schema_of("evaluations").field("timing").type
    one = pa.array([{"timer": "cuda_graph", "warmup_ms": 25.0, "repetitions": 100, "trials": 3,
                     "input_sets": 4, "l2_flush": True, "cuda_graph": True}], type=t)
    return one.take(pa.array(np.zeros(n, dtype=np.int64)))


def _timestamps(n: int, rng: np.random.Generator) -> np.ndarray:
    start = int(datetime(2025, 10, 1, tzinfo=timezone.utc).timestamp() * 1e6)
    return np.sort(start + rng.integers(0, 30 * 86400 * 10**6, n)).astype("datetime64[us]")


def _logs(status, sol, sha, m, lat, ref, abs_err, rng) -> list[str]:
    builds = rng.uniform(0.4, 9.0, len(status))
    out = []
    for i, st in enumerate(status.tolist()):
        common = {"sol": sol[i], "triton": "3.4.0", "build": builds[i]}
        if st == "PASSED":
            out.append(_PASSED_LOG.format(**common, trials=3, abs_err=abs_err[i],
                                          rel_err=abs_err[i] * 7, reps=100, sets=4, lat=lat[i],
                                          iqr=lat[i] * 0.02, ref=ref[i]))
        else:
            out.append(_FAILED_LOG.format(**common, hash=sha[i][:16], error=_ERRORS[i % 5],
                                          status=st, m=m[i], detail="see above"))
    return out


def synthetic_tables(n_defs: int = 20, n_workloads: int = 500, n_solutions: int = 100,
                     seed: int = 0) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    defs = definitions(n_defs)
    wls = workloads(defs, n_workloads, rng)
    sols = solutions(defs, n_solutions, rng)
    return {
        "definitions": pa.Table.from_pylist(defs, schema=schema_of("definitions")),
        "workloads": pa.Table.from_pylist(wls, schema=schema_of("workloads")),
        "solutions": pa.Table.from_pylist(sols, schema=schema_of("solutions")),
        "evaluations": evaluations(defs, wls, sols, n_workloads, n_solutions, rng),
    }


def write_synthetic(root: str | Path, n_defs: int = 20, n_workloads: int = 500,
                    n_solutions: int = 100, seed: int = 0):
    """A dataset folder holding ``synthetic_tables(...)``; evaluations as one run part file."""
    from .dataset import Dataset, write_parquet

    ds = Dataset.create(root, card=False)
    tables = synthetic_tables(n_defs, n_workloads, n_solutions, seed)
    for table in ("definitions", "workloads", "solutions"):
        ds.replace(table, tables[table])
    # Built schema-exact and key-unique by construction: skip append's row-by-row checks.
    write_parquet(ds.table_dir("evaluations") / "run-synthetic.parquet", tables["evaluations"])
    ds.write_card()
    return ds
