"""``fib bench`` on CPU runs triton solutions in the interpreter without being told to.

conftest.py sets TRITON_INTERPRET=1 for the test process; here the CLI runs in a subprocess whose
environment lacks it, so only the worker's own setting can make the triton kernel run.
"""

from __future__ import annotations

import os
import subprocess
import sys

from fib_data.curated import ops
from fib_data.curated.solutions import solutions
from fib_data.curated.workloads import default_workloads
from fib_data.dataset import Dataset


def test_cpu_worker_sets_triton_interpret(tmp_path):
    definition = ops.rmsnorm(64, 1e-6)
    ds = Dataset.create(tmp_path / "ds", card=False)
    ds.replace("definitions", [definition])
    ds.replace("workloads", default_workloads(definition, ds.blobs, profile="cpu")[:1])
    ds.replace("solutions", [r for r in solutions([definition]) if r["name"].endswith("__triton")])
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    cmd = [sys.executable, "-m", "fib_data", "bench", str(ds.root), "--devices", "cpu", "--all-hardware", "--trials", "1",
           "--reps", "2", "--warmup-ms", "1", "--timeout", "120"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = Dataset(ds.root).read("evaluations").to_pylist()
    assert [r["status"] for r in rows] == ["PASSED"], [r["log"] for r in rows]
    assert rows[0]["solution"].endswith("__triton")
