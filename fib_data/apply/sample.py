"""Rows for small hand-made datasets that exercise apply(): tests, the overhead benchmark and the
GPU decode-loop demo build their dispatch scenarios (a fast solution, a broken one, shapes with
no correct solution) from these. Not used by apply() itself."""

from __future__ import annotations

import platform
from datetime import datetime, timezone

from ..hashing import environment_hash, solution_hash


def solution_row(definition: str, name: str, source: str, *, dps: bool = False,
                 language: str = "python", author: str = "fib-data apply sample",
                 description: str | None = None) -> dict:
    row = {"name": name, "definition": definition, "author": author, "description": description,
           "language": language, "target_hardware": [], "entry_point": "main.py::run",
           "destination_passing_style": dps, "binding": None, "dependencies": ["torch"],
           "sources": [{"path": "main.py", "content": source}]}
    row["content_hash"] = solution_hash(row)
    return row


def evaluation_row(solution: dict, workload: dict, status: str, latency_ms: float | None, *,
                   hardware: str, device: str = "cpu", run_id: str = "apply-sample",
                   flags: list[str] | None = None, log: str | None = None,
                   reference_latency_ms: float | None = None) -> dict:
    env = {"hardware": hardware, "gpu": None if device == "cpu" else hardware, "driver": None,
           "cuda": None, "torch": None, "triton": None, "flashinfer": None,
           "python": platform.python_version(), "other_libs": []}
    passed = status == "PASSED"
    return {
        "run_id": run_id, "definition": solution["definition"], "workload_uuid": workload["uuid"],
        "solution": solution["name"], "solution_hash": solution["content_hash"], "status": status,
        "max_absolute_error": 1e-3 if passed else None, "max_relative_error": 1e-3 if passed else None,
        "latency_ms": latency_ms, "reference_latency_ms": reference_latency_ms,
        "speedup_factor": (reference_latency_ms / latency_ms
                           if reference_latency_ms and latency_ms else None),
        "latency_iqr_ms": None, "reference_latency_iqr_ms": None, "achieved_gbps": None,
        "achieved_tflops": None, "bandwidth_fraction": None, "compute_fraction": None,
        "timing": None, "device": device, "environment": env,
        "environment_hash": environment_hash(env), "flags": flags or [],
        "timestamp": datetime.now(timezone.utc), "log": log, "correctness_extra": None,
    }
