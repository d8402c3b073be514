"""Workloads for the curated definitions: valid structured inputs, made from per-sequence lengths.

``make_workload`` turns var-axis values and sequence lengths into a complete ``workloads`` row.
Structured inputs (kv_indptr / kv_indices / kv_last_page_len over a scattered page pool,
qo_indptr, pos_ids, per-row top_k / top_p) are built consistently and stored as one safetensors
blob; float tensors are marked ``random`` (the executor draws N(0, 1) and the reference's
``prepare`` fixes them up); scalars (sm_scale) take the value the definition documents.

``default_workloads`` ships a spread of serving shapes per definition. Two profiles:

* ``full`` - what serving sees: decode batches 1..256 with KV lengths 64..32k, prefill chunks
  512..8192 (some after a cached prefix), token counts 1..8192; weights say how common each is.
* ``cpu``  - tiny var axes (a few tokens, KV <= 100) so every reference runs on a laptop CPU in
  seconds; definitions whose inputs exceed ``CPU_INPUT_BYTES`` even then (the 1.2 GB of
  Qwen3-MoE expert weights) get no cpu workload.

Defaults when lengths are not given: decode sequences hold ``DEFAULT_KV_LEN`` tokens (or an even
split of ``num_kv_indices`` pages when that axis is given); prefill queries split ``total_q``
evenly with no cached prefix; RoPE positions run 0..num_tokens-1 (one prefill). The page pool
has ``max(8, used // 8)`` spare pages and the used pages are a seeded random permutation of it.
Everything is seeded, so a rebuild writes the same blobs and the same uuids.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import numpy as np

from ..blobs import BlobStore
from .ops.common import scalar_default

PROFILES = ("full", "cpu")
DEFAULT_KV_LEN = 512
CPU_INPUT_BYTES = 512 * 2**20
TOP_K_CHOICES = (20, 50, 100, 1000)
TOP_P_CHOICES = (0.8, 0.9, 0.95, 1.0)

#: Fixed namespace: the same definition, axes and structure always get the same uuid.
NAMESPACE = uuid.UUID("5d1c43b6-6f38-4d53-9a5b-2f2f6f0c9a11")

_ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1,
             "float8_e5m2": 1, "float4_e2m1": 1, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
             "uint8": 1, "bool": 1}

# (batch, mean kv length, weight): decode traffic, most of it at moderate batch and context.
_DECODE = {"full": [(1, 64, 2), (1, 1024, 4), (1, 32768, 1), (4, 4096, 3), (16, 2048, 6),
                    (32, 8192, 3), (64, 1024, 8), (128, 512, 6), (128, 4096, 4), (256, 256, 3),
                    (256, 2048, 2)],
           "cpu": [(1, 64, 1), (3, 100, 1)]}
# (sequences, query chunk per sequence, cached prefix per sequence, weight).
_PREFILL = {"full": [(1, 512, 0, 4), (1, 2048, 0, 4), (1, 8192, 0, 2), (1, 2048, 6144, 3),
                     (1, 4096, 28672, 1), (4, 512, 1024, 3), (8, 1024, 0, 2), (16, 256, 3840, 2)],
            "cpu": [(1, 16, 0, 1), (2, 8, 24, 1)]}
# (tokens, weight): GEMM / norm / activation / MoE token counts, decode-heavy.
_TOKENS = {"full": [(1, 4), (8, 4), (32, 4), (64, 4), (128, 3), (256, 3), (512, 2), (2048, 2),
                    (8192, 1)],
           "cpu": [(1, 1), (7, 1)]}
_SAMPLING = {"full": [(1, 4), (8, 4), (32, 4), (64, 3), (128, 2), (256, 1)], "cpu": [(1, 1), (4, 1)]}


# ---- the generator --------------------------------------------------------------------------
def make_workload(definition: dict, axes: dict[str, int], store: BlobStore, *,
                  kv_lens: list[int] | None = None, qo_lens: list[int] | None = None,
                  seed: int = 0, weight: int = 1, provenance: dict | None = None) -> dict:
    """A complete workloads row for ``definition``.

    ``axes`` gives var-axis values; those implied by ``kv_lens`` / ``qo_lens`` (batch_size,
    len_indptr, num_kv_indices, num_pages, total_q, total_kv, num_tokens) are derived and, when
    also given, must agree. Structured tensors go to ``store`` as one blob.
    """
    name = definition["name"]
    derived, tensors = _structure(definition, dict(axes), kv_lens, qo_lens, seed)
    values = {**axes}
    for key, value in derived.items():
        if key in axes and axes[key] != value:
            raise ValueError(f"workload for {name}: axis {key}={axes[key]} disagrees with the "
                             f"sequence lengths, which imply {value}")
        values[key] = value
    var_axes = [a["name"] for a in definition["axes"] if a["type"] == "var"]
    missing = [a for a in var_axes if a not in values]
    if missing:
        raise ValueError(f"workload for {name}: no value for var axes {missing}")
    sha = store.put({k: tensors[k] for k in sorted(tensors)}) if tensors else None
    inputs = [_input(spec, sha if spec["name"] in tensors else None) for spec in definition["inputs"]]
    axis_rows = [{"name": a, "value": int(values[a])} for a in var_axes]
    key = json.dumps({"definition": name, "axes": axis_rows, "blob": sha,
                      "inputs": [(i["name"], i["type"], i["value"]) for i in inputs]}, sort_keys=True)
    row = {
        "uuid": str(uuid.uuid5(NAMESPACE, key)), "definition": name, "axes": axis_rows,
        "inputs": inputs, "weight": int(weight), "source_kind": "curated", "source_file": None,
        "model": _model(definition), "engine": None, "observed_at": None, "measured_axes": [],
        "bucketing": "exact", "notes": None,
    }
    row.update(provenance or {})
    return row


def _input(spec: dict, sha: str | None) -> dict:
    row = {"name": spec["name"], "type": "random", "value": None, "sha256": None, "tensor_key": None}
    if sha:
        row.update(type="safetensors", sha256=sha, tensor_key=spec["name"])
    elif not spec.get("shape"):
        value = scalar_default(spec)
        if value is None:
            raise ValueError(f"scalar input {spec['name']} has no documented default")
        row.update(type="scalar", value=json.dumps(value))
    return row


def _model(definition: dict) -> str | None:
    return next((t.split(":", 1)[1] for t in definition.get("tags") or [] if t.startswith("model:")), None)


def _const(definition: dict) -> dict[str, int]:
    return {a["name"]: a["value"] for a in definition["axes"] if a["type"] == "const"}


def _structure(definition: dict, axes: dict[str, int], kv_lens, qo_lens, seed: int):
    names = {i["name"] for i in definition["inputs"]}
    rng = np.random.default_rng(seed)
    if "kv_indices" in names:
        return _paged(definition, axes, kv_lens, qo_lens if "qo_indptr" in names else None,
                      "qo_indptr" in names, rng)
    if "qo_indptr" in names:
        return _ragged(axes, kv_lens, qo_lens)
    if "pos_ids" in names:
        return _positions(axes, kv_lens, qo_lens)
    if "top_k" in names:
        return _sampling_params(axes, rng)
    return {}, {}


def _lengths(values, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.int64)
    if arr.ndim != 1 or len(arr) == 0 or (arr < 1).any():
        raise ValueError(f"{what} must be a non-empty list of positive lengths, got {values!r}")
    return arr


def _indptr(lens: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)


def _batch(axes: dict[str, int]) -> int:
    if "batch_size" in axes:
        return axes["batch_size"]
    return axes["len_indptr"] - 1 if "len_indptr" in axes else 1


def _prefill_lens(axes, kv_lens, qo_lens):
    """(qo, kv) lengths for prefill: total_q split evenly with no prefix unless told otherwise."""
    if qo_lens is None:
        if kv_lens is not None:
            qo_lens = kv_lens
        else:
            batch, total = _batch(axes), axes.get("total_q", DEFAULT_KV_LEN)
            qo_lens = [total // batch + (i < total % batch) for i in range(batch)]
    qo = _lengths(qo_lens, "qo_lens")
    kv = _lengths(kv_lens if kv_lens is not None else qo, "kv_lens")
    if len(kv) != len(qo) or (kv < qo).any():
        raise ValueError("kv_lens must match qo_lens in count and be >= them (queries are the "
                         "last tokens of each sequence)")
    return qo, kv


def _paged(definition, axes, kv_lens, qo_lens, prefill: bool, rng):
    page_size = _const(definition)["page_size"]
    if prefill:
        qo, kv = _prefill_lens(axes, kv_lens, qo_lens)
    elif kv_lens is not None:
        kv = _lengths(kv_lens, "kv_lens")
    elif "num_kv_indices" in axes:
        batch = _batch(axes)
        pages = [axes["num_kv_indices"] // batch + (i < axes["num_kv_indices"] % batch) for i in range(batch)]
        kv = _lengths([p * page_size for p in pages], "pages per sequence")
    else:
        kv = np.full(_batch(axes), DEFAULT_KV_LEN, dtype=np.int64)
    pages = (kv + page_size - 1) // page_size
    used = int(pages.sum())
    pool = axes.get("num_pages") or used + max(8, used // 8)
    if pool < used:
        raise ValueError(f"num_pages={pool} is fewer than the {used} pages the sequences use")
    # Distinct pages in random order; choice() shuffles only the pages drawn, which matters when
    # the pool is a server's whole KV capacity (ingested workloads) and a batch uses little of it.
    tensors = {"kv_indptr": _indptr(pages),
               "kv_indices": rng.choice(pool, size=used, replace=False).astype(np.int32)}
    if any(i["name"] == "kv_last_page_len" for i in definition["inputs"]):
        tensors["kv_last_page_len"] = (kv - (pages - 1) * page_size).astype(np.int32)
    derived = {"batch_size": len(kv), "len_indptr": len(kv) + 1, "num_kv_indices": used,
               "num_pages": int(pool)}
    if prefill:
        tensors["qo_indptr"] = _indptr(qo)
        derived["total_q"] = int(qo.sum())
    return derived, tensors


def _ragged(axes, kv_lens, qo_lens):
    qo, kv = _prefill_lens(axes, kv_lens, qo_lens)
    return ({"len_indptr": len(qo) + 1, "total_q": int(qo.sum()), "total_kv": int(kv.sum())},
            {"qo_indptr": _indptr(qo), "kv_indptr": _indptr(kv)})


def _positions(axes, kv_lens, qo_lens):
    """Prefill chunks occupy the last qo positions of each sequence; decode tokens the last one."""
    if qo_lens is None and kv_lens is not None:
        qo_lens = [1] * len(kv_lens)
    if qo_lens is None:
        qo_lens = [axes.get("num_tokens", DEFAULT_KV_LEN)]
    qo, kv = _prefill_lens(axes, kv_lens, qo_lens)
    pos = np.concatenate([np.arange(k - q, k) for q, k in zip(qo, kv)]).astype(np.int32)
    return {"num_tokens": len(pos)}, {"pos_ids": pos}


def _sampling_params(axes, rng):
    batch = _batch(axes)
    return ({"batch_size": batch},
            {"top_k": rng.choice(TOP_K_CHOICES, size=batch).astype(np.int32),
             "top_p": rng.choice(TOP_P_CHOICES, size=batch).astype(np.float32)})


# ---- the shipped spread ---------------------------------------------------------------------
def family(definition: dict) -> str:
    names = {i["name"] for i in definition["inputs"]}
    if "kv_indices" in names:
        return "paged_prefill" if "qo_indptr" in names else "decode"
    if "qo_indptr" in names:
        return "ragged_prefill"
    if "pos_ids" in names:
        return "rope"
    if "top_k" in names:
        return "sampling"
    return "tokens"


def _spread_lengths(batch: int, mean: int) -> list[int]:
    """Per-sequence lengths around mean (0.5x..1.5x), deterministic for (batch, mean)."""
    if batch == 1:
        return [mean]
    rng = np.random.default_rng([batch, mean])
    return [int(x) for x in rng.integers(max(1, mean // 2), mean * 3 // 2 + 1, size=batch)]


def default_specs(definition: dict, profile: str = "full") -> list[dict]:
    """The keyword arguments of ``make_workload`` for each shipped workload of ``definition``."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    kind = family(definition)
    if kind == "decode":
        return [dict(axes={}, kv_lens=_spread_lengths(b, kv), weight=w,
                     notes=f"decode batch {b}, kv mean {kv}") for b, kv, w in _DECODE[profile]]
    if kind in ("paged_prefill", "ragged_prefill"):
        return [dict(axes={}, qo_lens=[q] * n, kv_lens=[q + p] * n, weight=w,
                     notes=f"prefill {n} x chunk {q} after prefix {p}") for n, q, p, w in _PREFILL[profile]]
    if kind == "rope":
        decode = [dict(axes={}, kv_lens=_spread_lengths(b, kv), weight=w,
                       notes=f"decode batch {b}, kv mean {kv}") for b, kv, w in _DECODE[profile][::3]]
        prefill = [dict(axes={}, qo_lens=[q] * n, kv_lens=[q + p] * n, weight=w,
                        notes=f"prefill {n} x chunk {q} after prefix {p}") for n, q, p, w in _PREFILL[profile]]
        return decode + prefill
    if kind == "sampling":
        return [dict(axes={"batch_size": b}, weight=w, notes=f"batch {b}") for b, w in _SAMPLING[profile]]
    (axis,) = [a["name"] for a in definition["axes"] if a["type"] == "var"]
    return [dict(axes={axis: m}, weight=w, notes=f"{m} tokens") for m, w in _TOKENS[profile]]


def input_bytes(definition: dict, axes: dict[str, int]) -> int:
    sizes = {**_const(definition), **axes}
    return sum(math.prod(sizes[d] for d in spec["shape"] or []) * _ITEMSIZE[spec["dtype"]]
               for spec in definition["inputs"])


def default_workloads(definition: dict, store: BlobStore, profile: str = "full") -> list[dict]:
    """The shipped workloads of ``definition`` (see the module docstring for the profiles)."""
    rows = []
    for spec in default_specs(definition, profile):
        notes = f"curated ({profile} profile): {spec.pop('notes')}"
        row = make_workload(definition, spec.pop("axes"), store, provenance={"notes": notes}, **spec)
        values = {a["name"]: a["value"] for a in row["axes"]}
        if profile == "cpu" and input_bytes(definition, values) > CPU_INPUT_BYTES:
            continue
        rows.append(row)
    return rows
