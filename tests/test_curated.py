"""The curated catalog, the workload generator and ``fib build``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from fib_data.blobs import BlobStore
from fib_data.curated.build import build_dataset
from fib_data.curated.catalog import by_name, definitions
from fib_data.curated.workloads import (PROFILES, default_workloads, family, input_bytes,
                                        make_workload)
from fib_data.dataset import Dataset
from fib_data.models import available_models, load_model_config
from fib_data.rows import to_arrow

from test_references import call, inputs_for

DEFS = by_name()


# ---- model configs ---------------------------------------------------------------------------
def test_model_configs_carry_the_public_facts():
    assert set(available_models()) >= {"llama-3.1-8b", "llama-3.1-70b", "qwen3-30b-a3b", "deepseek-v3"}
    llama = load_model_config("llama-3.1-8b")
    assert (llama.num_attention_heads, llama.num_key_value_heads, llama.head_dim) == (32, 8, 128)
    assert llama.attention_kind == "gqa" and llama.rope_scaling["rope_type"] == "llama3"
    assert load_model_config("llama-3.1-70b").heads_per_rank(8) == (8, 1)
    qwen = load_model_config("qwen3-30b-a3b")
    assert (qwen.num_experts, qwen.num_experts_per_tok, qwen.moe_intermediate_size) == (128, 8, 768)
    ds = load_model_config("deepseek-v3")
    assert ds.attention_kind == "mla" and ds.num_experts == 256
    assert ds.mla_softmax_scale() == pytest.approx(0.1352337, abs=1e-6)
    with pytest.raises(FileNotFoundError, match="known: .*llama-3.1-8b"):
        load_model_config("no-such-model")


# ---- catalog ---------------------------------------------------------------------------------
def test_catalog_covers_the_issue():
    defs = definitions()
    assert len(defs) >= 14 and len({d["op_type"] for d in defs}) >= 9
    to_arrow("definitions", defs, file="catalog")
    for name in ["gqa_paged_decode_h32_kv8_d128_ps1", "gqa_paged_decode_h32_kv8_d128_ps16",
                 "gqa_paged_prefill_causal_h32_kv8_d128_ps16", "gqa_ragged_prefill_causal_h32_kv8_d128",
                 "mla_paged_decode_h16_ckv512_kpe64_ps1", "gemm_n6144_k4096", "gemm_n1280_k8192",
                 "gemm_fp8_block_scale_n1536_k7168", "rmsnorm_h4096", "fused_add_rmsnorm_h4096",
                 "silu_and_mul_h14336", "rope_llama31_h32_kv8_d128",
                 "top_k_top_p_sampling_from_probs_v128256", "moe_softmax_topk8_renorm_e128_h2048_i768"]:
        assert name in DEFS, name
    models = {t for d in defs for t in d["tags"] if t.startswith("model:")}
    assert models == {"model:llama-3.1-8b", "model:llama-3.1-70b", "model:qwen3-30b-a3b", "model:deepseek-v3"}


@pytest.mark.parametrize("name", sorted(DEFS))
def test_each_definition_is_complete(name):
    d = DEFS[name]
    assert any(t.startswith("stage:") for t in d["tags"]) and any(t.startswith("tp:") for t in d["tags"])
    out_dtypes = {o["dtype"] for o in d["outputs"]}
    tol_dtypes = {t["dtype"] for t in d["tolerances"]}
    assert out_dtypes <= tol_dtypes and all(t["reason"] for t in d["tolerances"])
    axes = {a["name"] for a in d["axes"]}
    for spec in d["inputs"] + d["outputs"]:
        assert set(spec["shape"] or []) <= axes, spec
    for a in d["axes"]:
        if a["type"] == "const":
            assert str(a["value"]) in d["name"] or a["name"] in (
                "K_blocks", "N_blocks", "gate_up_size", "gemm1_out_size", "hidden_size",
                "intermediate_size"), a


def test_upstream_signatures_are_kept(fixtures_dir):
    """Where flashinfer-trace has the definition, input names and order are the same."""
    for path in (fixtures_dir / "flashinfer-trace-2025-07" / "definitions" / "gqa").glob("*.json"):
        up = json.loads(path.read_text())
        if up["name"] not in DEFS:
            continue
        ours = [i["name"] for i in DEFS[up["name"]]["inputs"]]
        assert ours == [n for n in up["inputs"] if n != "last_page_len"], up["name"]
    up = json.loads((fixtures_dir / "flashinfer-trace-current" / "definitions" / "gemm_n4096_k4096.json").read_text())
    assert [i["name"] for i in DEFS["gemm_n4096_k4096"]["inputs"]] == list(up["inputs"])


# ---- workloads -------------------------------------------------------------------------------
def test_paged_structure_is_consistent(tmp_path):
    d = DEFS["gqa_paged_decode_h32_kv8_d128_ps16"]
    store = BlobStore(tmp_path)
    kv = [1, 16, 17, 300]
    row = make_workload(d, {}, store, kv_lens=kv, seed=3)
    axes = {a["name"]: a["value"] for a in row["axes"]}
    blob = store.load(row["inputs"][3]["sha256"])
    indptr, indices, last = blob["kv_indptr"], blob["kv_indices"], blob["kv_last_page_len"]
    pages = [1, 1, 2, 19]
    assert indptr.tolist() == list(np.cumsum([0] + pages)) and axes["num_kv_indices"] == sum(pages)
    assert last.tolist() == [1, 16, 1, 12] and indptr.dtype == np.int32
    assert len(set(indices.tolist())) == len(indices) and indices.max() < axes["num_pages"]
    assert indices.tolist() != sorted(indices.tolist()), "pages should be scattered over the pool"
    assert axes["batch_size"] == 4 and axes["len_indptr"] == 5
    assert row["inputs"][-1] == {"name": "sm_scale", "type": "scalar", "value": json.dumps(1 / 128 ** 0.5),
                                 "sha256": None, "tensor_key": None}
    assert row["inputs"][0]["type"] == "random"


def test_generator_rejects_inconsistent_axes(tmp_path):
    d = DEFS["gqa_paged_decode_h32_kv8_d128_ps1"]
    with pytest.raises(ValueError, match="batch_size=3 disagrees"):
        make_workload(d, {"batch_size": 3}, BlobStore(tmp_path), kv_lens=[5, 6])
    with pytest.raises(ValueError, match="kv_lens must"):
        make_workload(DEFS["gqa_ragged_prefill_causal_h32_kv8_d128"], {}, BlobStore(tmp_path),
                      qo_lens=[8], kv_lens=[4])
    with pytest.raises(ValueError, match="no value for var axes"):
        make_workload(DEFS["gemm_n4096_k4096"], {}, BlobStore(tmp_path))


def test_defaults_span_serving_ranges(tmp_path):
    store = BlobStore(tmp_path)
    decode = default_workloads(DEFS["gqa_paged_decode_h32_kv8_d128_ps16"], store)
    batches = [next(a["value"] for a in w["axes"] if a["name"] == "batch_size") for w in decode]
    assert min(batches) == 1 and max(batches) == 256
    kv_max = max(next(a["value"] for a in w["axes"] if a["name"] == "num_kv_indices") for w in decode)
    assert kv_max * 16 >= 32768 * 0.99
    prefill = default_workloads(DEFS["gqa_paged_prefill_causal_h32_kv8_d128_ps16"], store)
    totals = {next(a["value"] for a in w["axes"] if a["name"] == "total_q") for w in prefill}
    assert {512, 8192} <= totals
    assert all(w["weight"] >= 1 for w in decode + prefill)


@pytest.mark.parametrize("name", sorted(DEFS))
def test_cpu_workloads_satisfy_constraints_and_run_the_reference(name, tmp_path):
    d = DEFS[name]
    store = BlobStore(tmp_path)
    rows = default_workloads(d, store, "cpu")
    if family(d) == "tokens" and d["op_type"] == "moe":
        assert rows == []  # 1.2 GB of expert weights: no cpu workload, documented
        return
    assert rows
    for row in rows:
        axes = {a["name"]: a["value"] for a in row["axes"]}
        assert input_bytes(d, axes) < 512 * 2**20
        kw = {"axes": axes}
        x, all_axes = inputs_for(d, tmp_path, **kw, **_lengths_of(d, store, row))
        scope = {**all_axes, **x}
        for expr in d["constraints"]:
            assert eval(expr, {}, scope), (name, expr)
        result = call(d, x)
        result = result if isinstance(result, tuple) else (result,)
        for spec, value in zip(d["outputs"], result):
            assert value.dtype == getattr(torch, spec["dtype"])
            assert list(value.shape) == [all_axes[a] for a in spec["shape"]]


def _lengths_of(d, store, row):
    """Recover per-sequence lengths from a workload's blob so inputs_for rebuilds the same one."""
    blob = next((store.load(i["sha256"]) for i in row["inputs"] if i["sha256"]), None)
    if blob is None:
        return {}
    if "kv_last_page_len" in blob or "kv_indices" in blob:
        page = next(a["value"] for a in d["axes"] if a["name"] == "page_size")
        pages = np.diff(blob["kv_indptr"])
        last = blob.get("kv_last_page_len", np.full(len(pages), page))
        kv = ((pages - 1) * page + last).tolist()
        qo = np.diff(blob["qo_indptr"]).tolist() if "qo_indptr" in blob else None
        return {"kv_lens": kv, "qo_lens": qo} if qo else {"kv_lens": kv}
    if "qo_indptr" in blob:
        return {"qo_lens": np.diff(blob["qo_indptr"]).tolist(), "kv_lens": np.diff(blob["kv_indptr"]).tolist()}
    return {}


# ---- build -----------------------------------------------------------------------------------
def _snapshot(ds: Dataset) -> dict:
    return {t: ds.read(t) for t in ("definitions", "workloads", "solutions")} | {"blobs": ds.blobs.all()}


def test_build_is_reproducible(tmp_path):
    a = _snapshot(build_dataset(tmp_path / "a"))
    b = build_dataset(tmp_path / "b")
    build_dataset(tmp_path / "b")  # rebuilding in place changes nothing either
    snap = _snapshot(b)
    for key in a:
        assert a[key] == snap[key], key
    assert len(a["definitions"]) >= 14 and len(a["workloads"]) > 30 and a["blobs"]
    referenced = {i["sha256"] for w in a["workloads"].to_pylist() for i in w["inputs"] if i["sha256"]}
    assert referenced == set(a["blobs"])


def test_fib_build_cli_both_profiles(tmp_path):
    for profile in PROFILES:
        out = subprocess.run([sys.executable, "-m", "fib_data", "build", str(tmp_path / profile),
                              "--profile", profile], capture_output=True, text=True, check=True).stdout
        assert f"({profile} profile)" in out
    checked = subprocess.run([sys.executable, "-m", "fib_data", "validate", str(tmp_path / "full")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    full, cpu = Dataset(tmp_path / "full"), Dataset(tmp_path / "cpu")
    assert full.count("workloads") > 3 * cpu.count("workloads")
    assert full.count("definitions") == cpu.count("definitions")
    bad = subprocess.run([sys.executable, "-m", "fib_data", "build", str(tmp_path / "x"), "--profile", "big"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown profile" in bad.stderr


def test_validate_passes_on_the_build(tmp_path):
    validate = pytest.importorskip("fib_data.validate")
    ds = build_dataset(tmp_path / "ds", profile="full")
    problems = validate.validate_dataset(ds)
    assert problems == [], problems[:5]
