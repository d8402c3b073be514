"""A small evaluation dataset with known rows, shared by the query, report and notebook tests.

The rows are kept as plain dicts so each test can compute the answer it expects in Python,
independently of the SQL under test.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from fib_data.dataset import Dataset
from fib_data.hashing import environment_hash, solution_hash

H100 = "NVIDIA H100 80GB HBM3"
H200 = "NVIDIA H200"
PEAKS = {H100: (3350.0, 989.0), H200: (4800.0, 989.0)}  # GB/s, dense bf16 TFLOP/s
DAY0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
STATUS_DRAW = ["PASSED"] * 7 + ["INCORRECT_NUMERICAL", "RUNTIME_ERROR", "COMPILE_ERROR"]


def environment(hardware: str, torch: str = "2.13.0") -> dict:
    return {"hardware": hardware, "gpu": hardware, "driver": "580.1", "cuda": "13.0", "torch": torch,
            "triton": "3.6.0", "flashinfer": "0.7.2", "python": "3.12", "other_libs": []}


def definition(name: str, op_type: str, consts: dict[str, int], var_axes: list[str]) -> dict:
    """A definition row with one input and one output over the first var axis (queries never run it)."""
    tensor = {"shape": [var_axes[0]], "dtype": "bfloat16", "description": None}
    return {"name": name, "op_type": op_type, "tags": [], "description": f"synthetic {op_type}",
            "axes": ([{"name": a, "type": "var", "value": None, "description": None} for a in var_axes]
                     + [{"name": k, "type": "const", "value": v, "description": None}
                        for k, v in consts.items()]),
            "inputs": [{"name": "x", **tensor}], "outputs": [{"name": "y", **tensor}],
            "reference": "def run(x):\n    return x\n", "constraints": [],
            "tolerances": [{"dtype": "bfloat16", "atol": 1e-2, "rtol": 1e-2, "reason": None}]}


def workload(defn: dict, index: int, axes: dict[str, int], weight: int) -> dict:
    return {"uuid": f"{defn['name']}-w{index}", "definition": defn["name"],
            "axes": [{"name": k, "value": v} for k, v in axes.items()],
            "inputs": [{"name": i["name"], "type": "random", "value": None, "sha256": None,
                        "tensor_key": None} for i in defn["inputs"]],
            "weight": weight, "source_kind": "synthetic", "source_file": None, "model": None,
            "engine": None, "observed_at": None, "measured_axes": [], "bucketing": "exact",
            "notes": None}


def solution(name: str, defn: str, author: str, language: str, lines: int) -> dict:
    source = "\n".join(f"x{i} = {i}" for i in range(lines))
    row = {"name": name, "definition": defn, "author": author, "description": None,
           "language": language, "target_hardware": ["H100"], "entry_point": "main.py::run",
           "destination_passing_style": True, "binding": None, "dependencies": [],
           "sources": [{"path": "main.py", "content": source}]}
    row["content_hash"] = solution_hash(row)
    return row


def evaluation(sol: dict, wl: dict, env: dict, run_id: str, when: datetime, status: str,
               ref_ms: float, speedup: float, bytes_: float, flops: float) -> dict:
    ok = status == "PASSED"
    lat = ref_ms / speedup if ok else None
    peak_gbps, peak_tflops = PEAKS[env["hardware"]]
    gbps = bytes_ / (lat * 1e-3) / 1e9 if ok else None
    tflops = flops / (lat * 1e-3) / 1e12 if ok else None
    return {
        "run_id": run_id, "definition": sol["definition"], "workload_uuid": wl["uuid"],
        "solution": sol["name"], "solution_hash": sol["content_hash"], "status": status,
        "max_absolute_error": 0.0 if ok else None, "max_relative_error": 0.0 if ok else None,
        "latency_ms": lat, "reference_latency_ms": ref_ms, "speedup_factor": speedup if ok else None,
        "latency_iqr_ms": lat * 0.02 if ok else None, "reference_latency_iqr_ms": ref_ms * 0.02,
        "achieved_gbps": gbps, "achieved_tflops": tflops,
        "bandwidth_fraction": gbps / peak_gbps if ok else None,
        "compute_fraction": tflops / peak_tflops if ok else None,
        "timing": None, "device": "cuda:0", "environment": env,
        "environment_hash": environment_hash(env), "flags": [], "timestamp": when, "log": "",
        "correctness_extra": None,
    }


def tables(seed: int = 7) -> dict[str, list[dict]]:
    """Three definitions (one with no solutions), six solutions, two GPUs, two H100 runs."""
    rng = random.Random(seed)
    norm = definition("rmsnorm_h4096", "rmsnorm", {"hidden_size": 4096}, ["batch_size"])
    attn = definition("gqa_paged_decode_h32_kv8_d128_ps1", "gqa_paged",
                      {"num_qo_heads": 32, "num_kv_heads": 8, "head_dim": 128, "page_size": 1},
                      ["batch_size", "num_kv_indices"])
    lonely = definition("gemm_n4096_k4096", "gemm", {"n": 4096, "k": 4096}, ["m"])
    workloads = ([workload(norm, i, {"batch_size": b}, w) for i, (b, w) in enumerate([(1, 5), (8, 1), (64, 2)])]
                 + [workload(attn, i, {"batch_size": b, "num_kv_indices": b * s}, w)
                    for i, (b, s, w) in enumerate([(1, 512, 1), (4, 1024, 1), (16, 2048, 1), (64, 4096, 10)])]
                 + [workload(lonely, i, {"m": m}, 1) for i, m in enumerate([16, 256])])
    solutions = [solution("norm_triton", norm["name"], "alice", "triton", 30),
                 solution("norm_cuda", norm["name"], "bob", "cuda", 80),
                 solution("norm_torch", norm["name"], "alice", "python", 8),
                 solution("attn_triton", attn["name"], "alice", "triton", 120),
                 solution("attn_cuda", attn["name"], "carol", "cuda", 300),
                 solution("attn_torch", attn["name"], "bob", "python", 20)]
    by_def = {}
    for w in workloads:
        by_def.setdefault(w["definition"], []).append(w)
    # FLOPs and bytes per workload: attention's last workload is made compute-bound on purpose.
    cost = {w["uuid"]: (1e6 * (i + 1), (5e8 if i == 3 and w["definition"] == attn["name"] else 1e6) * (i + 1))
            for d in by_def.values() for i, w in enumerate(d)}
    runs = [("run-old", environment(H100, "2.12.0"), DAY0),
            ("run-new", environment(H100), DAY0 + timedelta(days=1)),
            ("run-h200", environment(H200), DAY0 + timedelta(days=1, hours=1))]
    evaluations = []
    for run_id, env, day in runs:
        for k, sol in enumerate(solutions):
            if env["hardware"] == H200 and sol["definition"] != norm["name"]:
                continue
            for j, wl in enumerate(by_def[sol["definition"]]):
                if run_id == "run-new" and sol["name"] == "norm_cuda" and j == 2:
                    continue  # left at the old environment: a stale evaluation
                if rng.random() < 0.1 and run_id != "run-old":
                    continue  # never evaluated here
                status = "COMPILE_ERROR" if sol["name"] == "attn_torch" else rng.choice(STATUS_DRAW)
                ref_ms = 0.01 * (j + 1) * (2 if env["hardware"] == H200 else 1)
                speedup = round(rng.lognormvariate(0.3, 0.6), 3)
                row = evaluation(sol, wl, env, run_id, day + timedelta(minutes=k * 10 + j),
                                 status, ref_ms, speedup, *cost[wl["uuid"]])
                if sol["name"] in ("norm_cuda", "attn_cuda") and j == 1:  # held for review by the executor
                    row["flags"] = ["implausible_speedup" if k % 2 else "wall_clock_gap", "host_bound"]
                elif j == 0:
                    row["flags"] = ["host_bound"]  # not a review flag
                evaluations.append(row)
    return {"definitions": [norm, attn, lonely], "workloads": workloads, "solutions": solutions,
            "evaluations": evaluations}


def write(root, rows: dict[str, list[dict]]) -> Dataset:
    ds = Dataset.create(root, card=False)
    for table, table_rows in rows.items():
        ds.replace(table, table_rows)
    ds.write_card()
    return ds


def newest(evaluations: list[dict]) -> list[dict]:
    """The evaluations that count: the newest (by timestamp) per (solution, workload, hardware)."""
    best: dict[tuple, dict] = {}
    for e in evaluations:
        key = (e["solution"], e["workload_uuid"], e["environment"]["hardware"])
        if key not in best or e["timestamp"] > best[key]["timestamp"]:
            best[key] = e
    return list(best.values())
