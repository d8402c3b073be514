"""torch.compile baselines share one persistent worker without exhausting dynamo's recompile limit.

On the H100 run, every compile solution after the 8th in a worker failed ("Hard failure due to
fullgraph=True"): the compiled functions were @torch.no_grad() wrappers, which torch.compile routes
through one shared dynamo frame. Here one CPU worker really compiles (FIB_COMPILE_CPU=1) six
solutions over two or three shapes each (batch 1 specialises, so ~13 compiled graphs).
"""

from __future__ import annotations

import pytest

from fib_data.curated import ops
from fib_data.curated.solutions import solutions
from fib_data.curated.workloads import default_workloads
from fib_data.dataset import Dataset
from fib_data.executor.bench import BenchOptions, run_bench

LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


@pytest.mark.slow
def test_many_compiled_solutions_in_one_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("FIB_COMPILE_CPU", "1")  # the spawned worker inherits it
    definitions = [ops.rmsnorm(32, 1e-6), ops.rmsnorm(48, 1e-6), ops.fused_add_rmsnorm(32, 1e-6),
                   ops.fused_add_rmsnorm(48, 1e-6), ops.silu_and_mul(40),
                   ops.rope_llama31(4, 2, 32, 500000.0, LLAMA3_SCALING)]
    ds = Dataset.create(tmp_path / "ds", card=False)
    ds.replace("definitions", definitions)
    ds.replace("workloads", [w for d in definitions for w in default_workloads(d, ds.blobs, profile="cpu")])
    compiled = [r for r in solutions(definitions) if r["name"].endswith("__torch_compile")]
    assert len(compiled) == len(definitions)
    ds.replace("solutions", compiled)
    options = BenchOptions(trials=2, reps=3, warmup_ms=1.0, timeout=240.0, build_timeout=0.0)
    result = run_bench(ds.root, devices=["cpu"], options=options)
    rows = result["rows"]
    assert len(rows) == 13
    assert {r["status"] for r in rows} == {"PASSED"}, [(r["solution"], r["log"]) for r in rows
                                                      if r["status"] != "PASSED"]
    assert all("worker_replaced" not in r["flags"] for r in rows)
