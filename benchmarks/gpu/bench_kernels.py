"""Definitions, workloads and solutions the GPU scripts share (self-contained: torch, optional flashinfer).

Importable without duckdb/polars/datasets, as on the GPU machine. ``dataset(root, ...)`` writes
them into a fresh fib-data dataset folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fib_data.dataset import Dataset  # noqa: E402

#: Where "ours" runs; FIB_BENCH_DEVICE=cpu checks the scripts' plumbing on a machine without a GPU.
DEVICE = os.environ.get("FIB_BENCH_DEVICE", "cuda:0")
from fib_data.hashing import solution_hash  # noqa: E402


def _axis(name, value=None):
    return {"name": name, "type": "const" if value is not None else "var", "value": value, "description": None}


def _t(name, shape, dtype="bfloat16"):
    return {"name": name, "shape": shape, "dtype": dtype, "description": None}


BF16 = [{"dtype": "bfloat16", "atol": 1e-2, "rtol": 1e-2, "reason": "one bf16 rounding"}]


def rmsnorm(hidden: int) -> dict:
    ref = '''import torch


@torch.no_grad()
def run(x, weight):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()).to(x.dtype)
'''
    return {"name": f"rmsnorm_h{hidden}", "op_type": "rmsnorm", "tags": ["bench"], "description": None,
            "axes": [_axis("batch_size"), _axis("hidden_size", hidden)],
            "inputs": [_t("x", ["batch_size", "hidden_size"]), _t("weight", ["hidden_size"])],
            "outputs": [_t("out", ["batch_size", "hidden_size"])], "reference": ref, "constraints": [],
            "tolerances": BF16}


def gemm(n: int, k: int) -> dict:
    ref = '''import torch


@torch.no_grad()
def run(a, b):
    return (a.float() @ b.float().T).to(a.dtype)
'''
    return {"name": f"gemm_n{n}_k{k}", "op_type": "gemm", "tags": ["bench"], "description": None,
            "axes": [_axis("m"), _axis("n", n), _axis("k", k)],
            "inputs": [_t("a", ["m", "k"]), _t("b", ["n", "k"])], "outputs": [_t("c", ["m", "n"])],
            "reference": ref, "constraints": [],
            "tolerances": [{"dtype": "bfloat16", "atol": 1e-1, "rtol": 2e-2,
                            "reason": "bf16 tensor-core accumulation order over k"}]}


def silu_mul(d: int) -> dict:
    ref = '''import torch


@torch.no_grad()
def run(x):
    d = x.shape[-1] // 2
    xf = x.float()
    return (torch.nn.functional.silu(xf[..., :d]) * xf[..., d:]).to(x.dtype)
'''
    return {"name": f"silu_and_mul_d{d}", "op_type": "silu_and_mul", "tags": ["bench"], "description": None,
            "axes": [_axis("batch_size"), _axis("two_d", 2 * d), _axis("d", d)],
            "inputs": [_t("x", ["batch_size", "two_d"])], "outputs": [_t("out", ["batch_size", "d"])],
            "reference": ref, "constraints": [], "tolerances": BF16}


def decode_attention(heads: int, kv_heads: int, dim: int) -> dict:
    ref = f'''import torch


@torch.no_grad()
def run(q, k, v):
    group = q.shape[1] // k.shape[2]
    kf = k.float().repeat_interleave(group, dim=2).transpose(1, 2)
    vf = v.float().repeat_interleave(group, dim=2).transpose(1, 2)
    s = torch.einsum("bhd,bhld->bhl", q.float(), kf) * {dim ** -0.5}
    return torch.einsum("bhl,bhld->bhd", s.softmax(-1), vf).to(q.dtype)
'''
    return {"name": f"decode_attention_h{heads}_kv{kv_heads}_d{dim}", "op_type": "attention",
            "tags": ["bench"], "description": "dense-KV decode attention, one query token per sequence",
            "axes": [_axis("batch_size"), _axis("kv_len"), _axis("num_qo_heads", heads),
                     _axis("num_kv_heads", kv_heads), _axis("head_dim", dim)],
            "inputs": [_t("q", ["batch_size", "num_qo_heads", "head_dim"]),
                       _t("k", ["batch_size", "kv_len", "num_kv_heads", "head_dim"]),
                       _t("v", ["batch_size", "kv_len", "num_kv_heads", "head_dim"])],
            "outputs": [_t("out", ["batch_size", "num_qo_heads", "head_dim"])], "reference": ref,
            "constraints": [], "tolerances": BF16}


SOLUTIONS: dict[str, dict[str, tuple[str, bool]]] = {
    "rmsnorm": {
        "torch_fp32_dps": ('''import torch


def run(x, weight, out):
    xf = x.float()
    out.copy_((xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(out.dtype))
''', True),
        "torch_fp32_value": ('''import torch


def run(x, weight):
    xf = x.float()
    return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(x.dtype)
''', False),
        "torch_rms_norm": ('''import torch


def run(x, weight):
    return torch.nn.functional.rms_norm(x.float(), (x.shape[-1],), weight.float(), 1e-5).to(x.dtype)
''', False),
        "flashinfer_rmsnorm": ('''import flashinfer


def run(x, weight, out):
    flashinfer.norm.rmsnorm(x, weight, eps=1e-5, out=out)
''', True),
    },
    "gemm": {
        "torch_matmul": ('''import torch


def run(a, b):
    return a @ b.T
''', False),
        "torch_linear": ('''import torch


def run(a, b):
    return torch.nn.functional.linear(a, b)
''', False),
        "torch_mm_out": ('''import torch


def run(a, b, c):
    torch.mm(a, b.T, out=c)
''', True),
    },
    "silu_and_mul": {
        "torch_split": ('''import torch


def run(x):
    d = x.shape[-1] // 2
    return torch.nn.functional.silu(x[..., :d]) * x[..., d:]
''', False),
        "torch_fp32": ('''import torch


def run(x, out):
    d = x.shape[-1] // 2
    xf = x.float()
    out.copy_(torch.nn.functional.silu(xf[..., :d]) * xf[..., d:])
''', True),
        "flashinfer_silu_and_mul": ('''import flashinfer


def run(x, out):
    flashinfer.activation.silu_and_mul(x, out=out)
''', True),
    },
    "attention": {
        "torch_sdpa": ('''import torch


def run(q, k, v):
    out = torch.nn.functional.scaled_dot_product_attention(
        q[:, :, None], k.transpose(1, 2), v.transpose(1, 2), enable_gqa=True)
    return out[:, :, 0]
''', False),
    },
}


def solution_row(definition: dict, name: str, source: str, dps: bool) -> dict:
    row = {"name": f"{definition['name']}__{name}", "definition": definition["name"], "author": "bench",
           "description": None, "language": "python", "target_hardware": ["cuda"],
           "entry_point": "main.py::run", "destination_passing_style": dps, "binding": None,
           "dependencies": ["flashinfer"] if "flashinfer" in name else ["torch"],
           "sources": [{"path": "main.py", "content": source}]}
    row["content_hash"] = solution_hash(row)
    return row


def workload_row(definition: dict, axes: dict) -> dict:
    uuid = definition["name"] + "-" + "-".join(f"{k}{v}" for k, v in axes.items())
    return {"uuid": uuid, "definition": definition["name"],
            "axes": [{"name": k, "value": v} for k, v in axes.items()],
            "inputs": [{"name": i["name"], "type": "random", "value": None, "sha256": None, "tensor_key": None}
                       for i in definition["inputs"]],
            "weight": 1, "source_kind": "synthetic", "source_file": None, "model": None, "engine": None,
            "observed_at": None, "measured_axes": [], "bucketing": "exact", "notes": "benchmarks/gpu"}


def no_jit() -> bool:
    """FIB_NO_JIT=1: leave out solutions that need flashinfer's JIT or nvcc (a short device call)."""
    return os.environ.get("FIB_NO_JIT") == "1"


def has_flashinfer() -> bool:
    if no_jit():
        return False
    try:
        import flashinfer  # noqa: F401

        return True
    except Exception:
        return False


def dataset(root: Path, plan: list[tuple[dict, list[dict]]], families: dict[str, str]) -> Dataset:
    """``plan``: (definition, [axes, ...]); ``families``: definition name -> SOLUTIONS key."""
    ds = Dataset.create(root, card=False)
    use_fi = has_flashinfer()
    sols = [solution_row(d, n, src, dps) for d, _ in plan
            for n, (src, dps) in SOLUTIONS[families[d["name"]]].items() if use_fi or "flashinfer" not in n]
    ds.replace("definitions", [d for d, _ in plan])
    ds.replace("workloads", [workload_row(d, a) for d, axes in plan for a in axes])
    ds.replace("solutions", sols)
    return ds


def save_json(name: str, obj) -> None:
    """Write ``obj`` to $OUT/<name> when $OUT is set (the device machine sends $OUT back)."""
    import json

    out = out_dir()
    if out:
        (out / name).write_text(json.dumps(obj, indent=2, default=str))


def out_dir() -> Path | None:
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        return Path(out)
    return None
