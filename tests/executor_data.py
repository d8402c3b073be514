"""Tiny definitions, workloads and solutions for executor tests (CPU-sized, fast)."""

from __future__ import annotations

import re
from pathlib import Path

from fib_data.dataset import Dataset
from fib_data.hashing import solution_hash

CHEATS = Path(__file__).parent / "cheats"

RMSNORM_REFERENCE = '''import torch


@torch.no_grad()
def run(x, weight):
    xf = x.to(torch.float32)
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()).to(x.dtype)
'''

RMSNORM = {
    "name": "rmsnorm_h64", "op_type": "rmsnorm", "tags": ["test"], "description": "tiny RMSNorm",
    "axes": [{"name": "batch_size", "type": "var", "value": None, "description": None},
             {"name": "hidden_size", "type": "const", "value": 64, "description": None}],
    "inputs": [{"name": "x", "shape": ["batch_size", "hidden_size"], "dtype": "bfloat16", "description": None},
               {"name": "weight", "shape": ["hidden_size"], "dtype": "bfloat16", "description": None}],
    "outputs": [{"name": "out", "shape": ["batch_size", "hidden_size"], "dtype": "bfloat16", "description": None}],
    "reference": RMSNORM_REFERENCE, "constraints": [],
    "tolerances": [{"dtype": "bfloat16", "atol": 1e-2, "rtol": 1e-2, "reason": "one bf16 rounding"}],
}

# Scaled gather with a scalar, a stored index blob and a prepare() that makes the scale positive.
GATHER_REFERENCE = '''import torch


def prepare(inputs, axes):
    inputs["scale"] = inputs["scale"].abs() + 0.5
    return inputs


def run(table, rows, scale, alpha):
    return table[rows.long()] * scale[:, None] * alpha, scale.sum().reshape(1)
'''

GATHER = {
    "name": "scaled_gather_d32", "op_type": "gather", "tags": ["test"], "description": "tiny gather",
    "axes": [{"name": "num_rows", "type": "var", "value": None, "description": None},
             {"name": "num_picks", "type": "var", "value": None, "description": None},
             {"name": "dim", "type": "const", "value": 32, "description": None}],
    "inputs": [{"name": "table", "shape": ["num_rows", "dim"], "dtype": "float32", "description": None},
               {"name": "rows", "shape": ["num_picks"], "dtype": "int32", "description": None},
               {"name": "scale", "shape": ["num_picks"], "dtype": "float32", "description": None},
               {"name": "alpha", "shape": None, "dtype": "float32", "description": "factor (default 2.0)"}],
    "outputs": [{"name": "picked", "shape": ["num_picks", "dim"], "dtype": "float32", "description": None},
                {"name": "total", "shape": ["1"], "dtype": "float32", "description": None}],
    "reference": GATHER_REFERENCE, "constraints": [], "tolerances": [],
}

HONEST_DPS = '''import torch


def run(x, weight, out):
    xf = x.float()
    out.copy_((xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(out.dtype))
'''

HONEST_VALUE = '''import torch


def run(x, weight):
    xf = x.float()
    return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(x.dtype)
'''

GATHER_SOLUTION = '''import torch


def run(table, rows, scale, alpha):
    return torch.index_select(table, 0, rows.long()) * (scale * alpha)[:, None], scale.sum().reshape(1)
'''


def solution(definition: dict, name: str, source: str, dps: bool, language: str = "python") -> dict:
    row = {"name": name, "definition": definition["name"], "author": "test", "description": None,
           "language": language, "target_hardware": ["cpu"], "entry_point": "main.py::run",
           "destination_passing_style": dps, "binding": None, "dependencies": ["torch"],
           "sources": [{"path": "main.py", "content": source}]}
    row["content_hash"] = solution_hash(row)
    return row


def cheat(path: Path) -> tuple[dict, dict]:
    """A solutions row from a cheat file, and its expectations from the ``# expect:`` header."""
    source = path.read_text()
    expect = dict(re.findall(r"^# expect-([\w-]+): (.+)$", source, re.MULTILINE))
    dps = expect.get("dps", "false") == "true"
    return solution(RMSNORM, f"cheat_{path.stem}", source, dps), expect


def workload(definition: dict, uuid: str, axes: dict, inputs: list | None = None) -> dict:
    given = {i["name"]: i for i in inputs or []}
    return {"uuid": uuid, "definition": definition["name"],
            "axes": [{"name": k, "value": v} for k, v in axes.items()],
            "inputs": [given.get(i["name"], {"name": i["name"], "type": "random", "value": None,
                                             "sha256": None, "tensor_key": None})
                       for i in definition["inputs"]],
            "weight": 1, "source_kind": "synthetic", "source_file": None, "model": None, "engine": None,
            "observed_at": None, "measured_axes": [], "bucketing": "exact", "notes": None}


def build(root: Path, solutions: list[dict] | None = None, batches=(4, 16)) -> Dataset:
    import torch

    ds = Dataset.create(root, card=False)
    sha = ds.blobs.put({"rows": torch.tensor([3, 0, 7, 7, 1], dtype=torch.int32)})
    gather_wl = workload(GATHER, "wl-gather-0", {"num_rows": 8, "num_picks": 5},
                         [{"name": "rows", "type": "safetensors", "value": None, "sha256": sha, "tensor_key": "rows"},
                          {"name": "alpha", "type": "scalar", "value": "2.0", "sha256": None, "tensor_key": None}])
    ds.replace("definitions", [RMSNORM, GATHER])
    ds.replace("workloads", [workload(RMSNORM, f"wl-rms-{b}", {"batch_size": b}) for b in batches] + [gather_wl])
    ds.replace("solutions", solutions if solutions is not None else default_solutions())
    return ds


def default_solutions() -> list[dict]:
    return [solution(RMSNORM, "rms_dps", HONEST_DPS, True), solution(RMSNORM, "rms_value", HONEST_VALUE, False),
            solution(GATHER, "gather_torch", GATHER_SOLUTION, False)]
