"""Achieved bandwidth and FLOP/s of an evaluation, and their fraction of the device's peak.

Bytes moved = every input and output tensor read or written once (a lower bound on traffic).
FLOPs come from a per-op_type formula over the workload's sizes; unknown op types get none.
Peaks: a table of datasheet numbers (dense, no sparsity), else what the worker measured.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from .inputs import axis_values, is_scalar, shape_of

_ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1,
             "float8_e5m2": 1, "float4_e2m1": 0.5, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
             "uint8": 1, "bool": 1}

#: name fragment -> (GB/s, {dtype: dense TFLOP/s}); first match wins, so list specific names first.
PEAKS: list[tuple[str, float, dict[str, float]]] = [
    ("H200", 4800.0, {"bfloat16": 989.0, "float16": 989.0, "float8_e4m3fn": 1979.0, "float32": 67.0}),
    ("H100 PCIe", 2000.0, {"bfloat16": 756.0, "float16": 756.0, "float8_e4m3fn": 1513.0, "float32": 51.0}),
    ("H100", 3350.0, {"bfloat16": 989.0, "float16": 989.0, "float8_e4m3fn": 1979.0, "float32": 67.0}),
    ("B200", 8000.0, {"bfloat16": 2250.0, "float16": 2250.0, "float8_e4m3fn": 4500.0, "float32": 80.0}),
    ("A100", 2039.0, {"bfloat16": 312.0, "float16": 312.0, "float32": 19.5}),
    ("L40S", 864.0, {"bfloat16": 362.0, "float16": 362.0, "float8_e4m3fn": 733.0, "float32": 91.6}),
]


def tensor_bytes(definition: Mapping, axes: Mapping[str, int]) -> int:
    total = 0.0
    for spec in list(definition["inputs"]) + list(definition["outputs"]):
        if not is_scalar(spec):
            total += math.prod(shape_of(spec, axes)) * _ITEMSIZE.get(spec["dtype"], 4)
    return int(total)


def _size(definition: Mapping, axes: Mapping[str, int], *names: str) -> int | None:
    lowered = {k.lower(): v for k, v in axes.items()}
    for n in names:
        if n in lowered:
            return int(lowered[n])
    return None


def _numel(definition: Mapping, axes: Mapping[str, int], which: str, index: int = 0) -> int:
    specs = definition[which]
    return math.prod(shape_of(specs[index], axes)) if len(specs) > index else 0


def _gemm(d, axes):
    k = _size(d, axes, "k", "hidden_size", "in_features")
    return 2 * _numel(d, axes, "outputs") * k if k else None


def _norm(d, axes):
    return 4 * _numel(d, axes, "inputs")


def _attention(d, axes):
    # 2 matmuls (QK^T, PV) of 2 FLOPs per multiply-add, over every (query head, kv token) pair.
    heads = _size(d, axes, "num_qo_heads", "num_heads")
    dim = _size(d, axes, "head_dim", "head_dim_ckv") or 0
    dim += _size(d, axes, "head_dim_kpe") or 0
    queries = _size(d, axes, "total_q", "num_qo_tokens", "batch_size", "len_q") or 1
    per_query_kv = _size(d, axes, "kv_len")  # dense KV: per sequence
    if per_query_kv is None:  # paged/ragged KV: total pages (or tokens) shared out over the batch
        total = _size(d, axes, "num_kv_indices", "total_kv", "num_kv_tokens")
        seqs = _size(d, axes, "batch_size", "num_seqs") or 1
        per_query_kv = total * (_size(d, axes, "page_size") or 1) / seqs if total else None
    if not (heads and dim and per_query_kv):
        return None
    return 4 * queries * heads * dim * per_query_kv


FLOPS: dict[str, Callable[[Mapping, Mapping], float | None]] = {
    "gemm": _gemm, "linear": _gemm, "rmsnorm": _norm, "fused_add_rmsnorm": _norm, "layernorm": _norm,
    "gqa_paged": _attention, "gqa_ragged": _attention, "mla_paged": _attention, "attention": _attention,
}


def flops(definition: Mapping, axes: Mapping[str, int]) -> float | None:
    op = definition.get("op_type", "")
    fn = FLOPS.get(op) or next((f for k, f in FLOPS.items() if op.startswith(k)), None)
    try:
        return fn(definition, axes) if fn else None
    except (KeyError, TypeError, ValueError):
        return None


def device_peaks(hardware: str | None, measured: Mapping[str, Any] | None = None) -> dict:
    """{'gbps': ..., 'tflops': {dtype: ...}, 'source': 'datasheet'|'measured'|None}."""
    for fragment, gbps, tflops in PEAKS:
        if hardware and fragment in hardware:
            return {"gbps": gbps, "tflops": tflops, "source": "datasheet"}
    if measured:
        return {"gbps": measured.get("gbps"), "tflops": measured.get("tflops") or {}, "source": "measured"}
    return {"gbps": None, "tflops": {}, "source": None}


def main_dtype(definition: Mapping) -> str:
    floats = [s["dtype"] for s in definition["inputs"] if not is_scalar(s) and s["dtype"].startswith(("float", "bfloat"))]
    return floats[0] if floats else "float32"


def roofline(definition: Mapping, workload: Mapping, latency_ms: float | None, peaks: Mapping) -> dict:
    out = {"achieved_gbps": None, "achieved_tflops": None, "bandwidth_fraction": None, "compute_fraction": None}
    if not latency_ms or latency_ms <= 0:
        return out
    axes = axis_values(definition, workload)
    seconds = latency_ms / 1e3
    out["achieved_gbps"] = tensor_bytes(definition, axes) / seconds / 1e9
    f = flops(definition, axes)
    if f:
        out["achieved_tflops"] = f / seconds / 1e12
    if peaks.get("gbps"):
        out["bandwidth_fraction"] = out["achieved_gbps"] / peaks["gbps"]
    peak_tf = (peaks.get("tflops") or {}).get(main_dtype(definition))
    if peak_tf and out["achieved_tflops"] is not None:
        out["compute_fraction"] = out["achieved_tflops"] / peak_tf
    return out


def measure_peaks(device: str) -> dict:
    """Fallback peaks from a quick copy and matmul on the device (used when the table has none)."""
    import time

    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    n = (256 << 20) if device.startswith("cuda") else (32 << 20)
    a = torch.empty(n // 4, dtype=torch.float32, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    sync()
    t0 = time.perf_counter()
    for _ in range(5):
        b.copy_(a)
    sync()
    gbps = 5 * 2 * n / (time.perf_counter() - t0) / 1e9
    m = 2048 if device.startswith("cuda") else 256
    x = torch.randn(m, m, device=device)
    x @ x
    sync()
    t0 = time.perf_counter()
    for _ in range(3):
        x @ x
    sync()
    tflops = 3 * 2 * m ** 3 / (time.perf_counter() - t0) / 1e12
    return {"gbps": gbps, "tflops": {"float32": tflops}}
