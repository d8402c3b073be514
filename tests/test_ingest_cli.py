"""`fib ingest` end to end: fixtures -> valid workloads; atomic on failure; --strict; idempotent."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fib_data.dataset import Dataset
from fib_data.ingest import IngestError, IngestOptions, ingest
from fib_data.validate import validate_dataset


def snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def ds(tmp_path):
    return Dataset.create(tmp_path / "ds")


def fib(*args):
    return subprocess.run([sys.executable, "-m", "fib_data", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


def test_cli_ingests_every_serving_log_fixture(fixtures_dir, ds):
    logs = fixtures_dir / "serving-logs"
    out = fib("ingest", logs / "sglang_scheduler_2025.log", logs / "vllm_v1_metrics.log",
              logs / "flashinfer_api_level3.log", "--model", "llama-3.1-8b", "--page-size", "16",
              "--kv-capacity", "100000", "--into", ds.root)
    assert out.returncode == 0, out.stderr
    assert "lines read: 41" in out.stdout and "skipped: 0" in out.stdout
    assert validate_dataset(ds) == []
    work = ds.polars("workloads")
    kinds = set(work["source_kind"].to_list())
    assert kinds == {"sglang_log", "vllm_log", "flashinfer_log"}
    # every SGLang batch runs the 4 llama projections: their weights add up to the batches' weights
    sglang = work.filter(work["source_kind"] == "sglang_log")
    gemm = sglang.filter(sglang["definition"] == "gemm_n6144_k4096")
    assert gemm["weight"].sum() == 3 + 40
    assert set(gemm["bucketing"].to_list()) == {"pow2"}
    vllm = work.filter(work["source_kind"] == "vllm_log")
    assert set(map(tuple, vllm["measured_axes"].to_list())) == {()}
    assert all("not per-batch shapes" in n for n in vllm["notes"].to_list())
    decode = sglang.filter(sglang["definition"] == "gqa_paged_decode_h32_kv8_d128_ps16").row(0, named=True)
    assert decode["measured_axes"] == ["batch_size", "len_indptr"] and decode["weight"] == 40
    # definitions the fixtures needed were added with the workloads
    assert {"gqa_paged_prefill_causal_h32_kv8_d128_ps16", "rope_llama31_h32_kv8_d128"} <= set(ds.polars("definitions")["name"])


def test_request_traces_and_exact_bucketing(fixtures_dir, ds, tmp_path):
    moon = tmp_path / "moon.jsonl"
    moon.write_text('{"timestamp": 0, "input_length": 700, "output_length": 4, "hash_ids": [0, 1]}\n'
                    '{"timestamp": 10, "input_length": 600, "output_length": 3, "hash_ids": [0, 2]}\n')
    report = ingest([moon], IngestOptions(model="llama-3.1-8b", page_size=16, bucketing="exact"), ds.root)
    assert validate_dataset(ds) == []
    work = ds.polars("workloads")
    attn = work.filter(work["definition"].str.starts_with("gqa_paged_prefill"))
    # request 2 shares block 0 (512 tokens) with request 1: its prefill computes 600 - 512 = 88 tokens
    axes = sorted(({a["name"]: a["value"] for a in r}["total_q"] for r in attn["axes"].to_list()))
    assert axes == [88, 700]
    assert report.total_weight == work["weight"].sum()
    assert set(work["source_file"]) == {str(moon)} and set(work["source_kind"]) == {"request_trace"}
    assert set(map(tuple, work["measured_axes"].to_list())) == {()}  # simulated, not measured


def test_fib_trace_import_with_blobs(fixtures_dir, ds, tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    root = tmp_path / "trace"
    (root / "workloads" / "gemm").mkdir(parents=True)
    blob_dir = root / "blob" / "workloads" / "rmsnorm" / "rmsnorm_h4096"
    blob_dir.mkdir(parents=True)
    save_file({"hidden_states": np.ones((3, 4096), dtype=np.float32)}, str(blob_dir / "rmsnorm_h4096_u1.safetensors"))
    lines = [{"definition": "gemm_n4096_k4096", "solution": None, "evaluation": None,
              "workload": {"uuid": f"u{i}", "axes": {"M": m}, "inputs": {"A": {"type": "random"}, "B": {"type": "random"}}}}
             for i, m in enumerate([256, 256, 8])]
    (root / "workloads" / "gemm" / "gemm_n4096_k4096.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    (root / "workloads" / "rmsnorm").mkdir()
    (root / "workloads" / "rmsnorm" / "rmsnorm_h4096.jsonl").write_text(json.dumps(
        {"definition": "rmsnorm_h4096", "workload": {"uuid": "u9", "axes": {"batch_size": 3}, "inputs": {
            "hidden_states": {"type": "safetensors", "path": "blob/workloads/rmsnorm/rmsnorm_h4096/rmsnorm_h4096_u1.safetensors",
                              "tensor_key": "hidden_states"}, "weight": {"type": "random"}}}}) + "\nnot json\n")
    report = ingest([root, fixtures_dir / "flashinfer-trace-current"], IngestOptions(model="llama-3.1-8b"), ds.root)
    assert report.skipped == {"line is not JSON": 1}
    work = {r["uuid"]: r for r in ds.polars("workloads").iter_rows(named=True)}
    fixture = [json.loads(line)["workload"]["axes"]["M"] for line in
               (fixtures_dir / "flashinfer-trace-current" / "workloads" / "gemm_n4096_k4096.jsonl").open()]
    # identical shapes merge into one row, across sources too; its weight counts them
    assert work["u0"]["weight"] == 2 + fixture.count(256)
    assert work["u2"]["weight"] == 1 + fixture.count(8)
    assert ds.count("workloads") == len(set(fixture) | {256, 8}) + 1
    sha = work["u9"]["inputs"][0]["sha256"]
    assert ds.blobs.exists(sha)
    assert validate_dataset(ds) == []


def test_failure_midway_adds_nothing(fixtures_dir, ds, tmp_path):
    logs = fixtures_dir / "serving-logs"
    before = snapshot(ds.root)
    # the SGLang log is parsed and mapped first; the vLLM log then fails (no KV capacity known)
    with pytest.raises(IngestError, match="kv-capacity"):
        ingest([logs / "sglang_scheduler_2025.log", logs / "vllm_v1_metrics.log"],
               IngestOptions(model="llama-3.1-8b", fmt="auto"), ds.root)
    assert snapshot(ds.root) == before
    assert not list(ds.root.glob(".ingest-*"))


def test_strict_turns_skips_into_failure(fixtures_dir, ds, tmp_path):
    log = tmp_path / "sglang.log"
    log.write_text((fixtures_dir / "serving-logs" / "sglang_scheduler_2025.log").read_text()
                   + "[2025-07-18 15:32:55 TP0] Decode batch. #running-req: 2, token usage: 0.00, #queue-req: 0\n")
    before = snapshot(ds.root)
    out = fib("ingest", log, "--model", "llama-3.1-8b", "--into", ds.root, "--strict")
    assert out.returncode != 0
    assert "missing #token: 1" in out.stderr and f"{log}:5" in out.stderr
    assert snapshot(ds.root) == before
    report = ingest([log], IngestOptions(model="llama-3.1-8b"), ds.root)
    assert report.skipped == {"missing #token": 1} and report.workloads
    assert "sglang.log:5" in report.render()


def test_ingesting_the_same_log_twice_adds_nothing_the_second_time(fixtures_dir, ds):
    log = fixtures_dir / "serving-logs" / "sglang_scheduler_2025.log"
    first = ingest([log], IngestOptions(model="llama-3.1-8b"), ds.root)
    n = ds.count("workloads")
    second = ingest([log], IngestOptions(model="llama-3.1-8b"), ds.root)
    assert n == sum(first.workloads.values()) > 0
    assert ds.count("workloads") == n and not second.workloads
    assert validate_dataset(ds) == []


def test_tensor_parallel_shapes(fixtures_dir, ds):
    ingest([fixtures_dir / "serving-logs" / "sglang_scheduler_2025.log"],
           IngestOptions(model="llama-3.1-70b", tp=8, page_size=16), ds.root)
    names = set(ds.polars("workloads")["definition"])
    # 64 heads / 8 kv heads over tp 8 -> 8 and 1 per rank; MLP 28672 / 8 = 3584 per rank
    assert {"gqa_paged_decode_h8_kv1_d128_ps16", "gemm_n7168_k8192", "silu_and_mul_h3584"} <= names
    assert validate_dataset(ds) == []


def test_format_detection(fixtures_dir, tmp_path):
    from fib_data.ingest.driver import detect_format

    logs = fixtures_dir / "serving-logs"
    assert detect_format(logs / "sglang_scheduler_2025.log") == "sglang"
    assert detect_format(logs / "vllm_v1_metrics.log") == "vllm"
    assert detect_format(logs / "flashinfer_api_level3.log") == "flashinfer_log"
    assert detect_format(fixtures_dir / "flashinfer-trace-current") == "fib_trace"
    azure = tmp_path / "a.csv"
    azure.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n")
    assert detect_format(azure) == "azure"
    other = tmp_path / "notes.txt"
    other.write_text("nothing to see\n")
    with pytest.raises(IngestError, match="--format"):
        detect_format(other)
