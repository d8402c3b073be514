"""Snapshots on a Hub: the real huggingface_hub and datasets clients against tests/hubserver.

The client side runs in subprocesses (the `fib` CLI, a `datasets` script), with HF_ENDPOINT,
HF_TOKEN, HF_HUB_DISABLE_XET and a fresh HF_HOME set before anything is imported: the clients
freeze those at import time. The server runs in this process, so tests can read what it received.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hubserver import HubServer

from fib_data.curated.build import build_dataset
from fib_data.dataset import Dataset
from fib_data.hashing import environment_hash
from fib_data.schema import TABLES

REPO = "team/kernels"
TOKENS = {"hf_writer": ("writer", "write"), "hf_reader": ("reader", "read")}
#: Lower than the Hub's 10 MB so the large-file rule can be exercised with a small file.
LFS_THRESHOLD = 64 * 1024


@pytest.fixture
def hub(tmp_path):
    server = HubServer(tmp_path / "hub-storage", TOKENS, lfs_threshold=LFS_THRESHOLD).start()
    yield server
    server.stop()
    assert server.unknown == [], f"the clients called routes the test Hub lacks: {server.unknown}"
    assert server.failures == [], f"the test Hub failed on: {server.failures}"


@pytest.fixture
def env(hub, tmp_path):
    # COLUMNS: rich would wrap the CLI's messages at 80 columns and split the phrases we look for.
    return {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_writer", "HF_HUB_DISABLE_XET": "1",
            "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
            "COLUMNS": "400"}


def fib(env: dict, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "fib_data", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode == 0) == ok, f"fib {' '.join(map(str, args))}\n{proc.stdout}\n{proc.stderr}"
    return proc


# ---- test data -------------------------------------------------------------------------------
def evaluation_rows(ds: Dataset, run_id: str, hardware: str) -> list[dict]:
    """One schema-exact PASSED row per (solution, workload of its definition)."""
    environment = {"hardware": hardware, "gpu": hardware, "driver": "570.1", "cuda": "12.8",
                   "torch": "2.11.0", "triton": "3.6.0", "flashinfer": "0.7.2",
                   "python": "3.12.3", "other_libs": []}
    workloads = ds.read("workloads", columns=["uuid", "definition"]).to_pylist()
    rows = []
    for sol in ds.read("solutions", columns=["name", "definition", "content_hash"]).to_pylist():
        for i, w in enumerate(x for x in workloads if x["definition"] == sol["definition"]):
            latency = 0.01 * (i + 1)
            rows.append({
                "run_id": run_id, "definition": sol["definition"], "workload_uuid": w["uuid"],
                "solution": sol["name"], "solution_hash": sol["content_hash"], "status": "PASSED",
                "max_absolute_error": 1e-3, "max_relative_error": 1e-3, "latency_ms": latency,
                "reference_latency_ms": 2 * latency, "speedup_factor": 2.0, "latency_iqr_ms": 0.001,
                "reference_latency_iqr_ms": 0.001, "achieved_gbps": 100.0, "achieved_tflops": 1.0,
                "bandwidth_fraction": 0.03, "compute_fraction": 0.001,
                "timing": {"timer": "cuda_event", "warmup_ms": 25.0, "repetitions": 50, "trials": 3,
                           "input_sets": 4, "l2_flush": True, "cuda_graph": False},
                "device": "cuda:0", "environment": environment,
                "environment_hash": environment_hash(environment), "flags": [],
                "timestamp": datetime(2026, 11, 23, tzinfo=timezone.utc), "log": None,
                "correctness_extra": None})
    assert rows, "the built dataset has no solution with workloads"
    return rows


def add_run(ds: Dataset, run_id: str, hardware: str) -> int:
    rows = evaluation_rows(ds, run_id, hardware)
    ds.append("evaluations", rows, name=f"run-{run_id}.parquet")
    return len(rows)


def folder_state(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def rows_of(folder: Path, table: str) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in (folder / "data" / table).glob("*.parquet"))


@pytest.fixture
def dataset(tmp_path) -> Dataset:
    return build_dataset(tmp_path / "local")


# ---- the round trip --------------------------------------------------------------------------
def test_publish_tag_publish_tag_pull_load(hub, env, dataset, tmp_path):
    ds = dataset
    n1 = add_run(ds, "r1", "NVIDIA H100 80GB HBM3")
    fib(env, "publish", ds.root, "--repo", REPO, "--tag", "v1")
    first = dict(hub.bytes_in)

    n2 = add_run(ds, "r2", "NVIDIA H200")
    hub.reset_counters()
    out = fib(env, "publish", ds.root, "--repo", REPO, "--tag", "v2").stdout
    second = dict(hub.bytes_in)
    assert f"+{n2} evaluations" in out
    # Only the new run file (LFS) and the card (inline in the commit) travel.
    assert second["lfs_put"] == (ds.root / "data/evaluations/run-r2.parquet").stat().st_size
    print(f"\nbytes received by the Hub: first publish {sum(first.values())} {first}, second "
          f"{sum(second.values())} {second} ({sum(second.values()) / sum(first.values()):.2%})")

    hub.restart()  # everything below reads what the server finds on disk
    for tag, evals in (("v1", n1), ("v2", n1 + n2)):
        folder = tmp_path / f"pulled-{tag}"
        fib(env, "pull", REPO, "--revision", tag, "--to", folder)
        assert rows_of(folder, "evaluations") == evals
        for table in ("definitions", "workloads", "solutions"):
            assert rows_of(folder, table) == ds.count(table)
        assert not list((folder / "blobs").rglob("*.safetensors")), "blobs are lazy by default"
    fib(env, "pull", REPO, "--revision", "v1", "--to", tmp_path / "pulled-v2")
    assert rows_of(tmp_path / "pulled-v2", "evaluations") == n1, "a re-pull drops newer part files"

    snaps = {line.split("│")[1].strip(): line.split("│")[-2].strip()  # tag -> evaluations column
             for line in fib(env, "snapshots", REPO).stdout.splitlines() if line.startswith("│")}
    assert snaps == {"v1": str(n1), "v2": str(n1 + n2)}
    changes = fib(env, "diff", f"{REPO}@v1", f"{REPO}@v2", "--format", "csv").stdout
    assert changes.count("added,evaluations") == n2 and "removed," not in changes

    script = ("import sys, datasets\n"
              "for rev in sys.argv[2:]:\n"
              "    d = datasets.load_dataset(sys.argv[1], 'evaluations', revision=rev, split='train')\n"
              "    print(rev, len(d))\n")
    proc = subprocess.run([sys.executable, "-c", script, REPO, "v1", "v2"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["v1", str(n1), "v2", str(n1 + n2)]

    # Nothing changed since v2: no commit, the new tag names the same commit.
    hub.reset_counters()
    fib(env, "publish", ds.root, "--repo", REPO, "--tag", "v2-again")
    refs = hub.storage.repo("dataset", REPO).refs()
    assert hub.requests["POST commit"] == 0 and refs["tags"]["v2-again"] == refs["tags"]["v2"]


def test_pull_tables_and_blobs_lazily_or_all(hub, env, dataset, tmp_path, monkeypatch):
    add_run(dataset, "r1", "NVIDIA H100 80GB HBM3")
    fib(env, "publish", dataset.root, "--repo", REPO, "--tag", "v1")
    only = tmp_path / "only-evals"
    fib(env, "pull", REPO, "--revision", "v1", "--to", only, "--table", "evaluations")
    assert rows_of(only, "evaluations") == dataset.count("evaluations")
    assert not list((only / "data/workloads").glob("*.parquet"))
    proc = fib(env, "publish", only, "--repo", REPO, ok=False)
    assert "pulled with only evaluations" in proc.stderr

    full = tmp_path / "full"
    fib(env, "pull", REPO, "--to", full, "--blobs")
    assert Dataset(full).blobs.all() == dataset.blobs.all()

    lazy = tmp_path / "lazy"
    fib(env, "pull", REPO, "--to", lazy)
    for key in ("HF_ENDPOINT", "HF_TOKEN", "HF_HUB_DISABLE_XET", "HF_HOME"):
        monkeypatch.setenv(key, env[key])
    sha = dataset.blobs.all()[0]
    pulled = Dataset(lazy)
    assert not pulled.blobs.exists(sha)
    assert pulled.blobs.get_bytes(sha) == dataset.blobs.get_bytes(sha)
    assert pulled.blobs.exists(sha)


# ---- failures --------------------------------------------------------------------------------
def test_killed_mid_upload_leaves_no_half_snapshot_and_rerun_publishes(hub, env, dataset, tmp_path):
    add_run(dataset, "r1", "NVIDIA H100 80GB HBM3")
    before = folder_state(dataset.root)
    hub.crash_during("commit", after_bytes=200)
    proc = fib(env, "publish", dataset.root, "--repo", REPO, "--tag", "v1", ok=False)
    assert "connection" in proc.stderr.lower()
    assert folder_state(dataset.root) == before, "publish changed the local dataset"

    hub.restart()
    repo = hub.storage.repo("dataset", REPO)
    refs = repo.refs()
    assert refs["tags"] == {} and list(repo.tree(refs["heads"]["main"])) == [".gitattributes"]

    fib(env, "publish", dataset.root, "--repo", REPO, "--tag", "v1")
    pulled = tmp_path / "pulled"
    fib(env, "pull", REPO, "--revision", "v1", "--to", pulled)
    for table in TABLES:
        assert rows_of(pulled, table) == dataset.count(table)
    assert folder_state(dataset.root) == before


def test_bad_token_is_a_clear_error(hub, env, dataset):
    proc = fib({**env, "HF_TOKEN": "hf_stolen"}, "publish", dataset.root, "--repo", REPO, ok=False)
    assert "rejected the token" in proc.stderr and "HF_TOKEN" in proc.stderr
    assert not hub.storage.exists("dataset", REPO)


def test_tag_refused_unless_forced_and_readers_open_prs(hub, env, dataset, tmp_path):
    fib(env, "publish", dataset.root, "--repo", REPO, "--tag", "v1")
    v1 = hub.storage.repo("dataset", REPO).refs()["tags"]["v1"]
    n = add_run(dataset, "r1", "NVIDIA H100 80GB HBM3")
    proc = fib(env, "publish", dataset.root, "--repo", REPO, "--tag", "v1", ok=False)
    assert "tag v1 already exists" in proc.stderr and "--force" in proc.stderr
    refs = hub.storage.repo("dataset", REPO).refs()
    assert refs["tags"]["v1"] == v1 == refs["heads"]["main"], "a refused publish must not commit"

    # A contributor with a read token: refused on main, told to open a PR, which leaves main.
    reader = {**env, "HF_TOKEN": "hf_reader"}
    proc = fib(reader, "publish", dataset.root, "--repo", REPO, ok=False)
    assert "--create-pr" in proc.stderr
    out = fib(reader, "publish", dataset.root, "--repo", REPO, "--create-pr").stdout
    assert "refs/pr/1" in out
    refs = hub.storage.repo("dataset", REPO).refs()
    assert refs["heads"]["main"] == v1 and set(refs["pulls"]) == {"1"}
    pr = tmp_path / "pr"
    fib(env, "pull", REPO, "--revision", "refs/pr/1", "--to", pr, "--table", "evaluations")
    assert rows_of(pr, "evaluations") == n

    fib(env, "publish", dataset.root, "--repo", REPO, "--tag", "v1", "--force")
    refs = hub.storage.repo("dataset", REPO).refs()
    assert refs["tags"]["v1"] == refs["heads"]["main"] != v1


def test_invalid_dataset_is_refused_with_the_errors(hub, env, dataset):
    rows = evaluation_rows(dataset, "r1", "NVIDIA H100 80GB HBM3")[:1]
    rows[0]["workload_uuid"] = "00000000-0000-0000-0000-000000000000"
    dataset.append("evaluations", rows, name="run-r1.parquet")
    proc = fib(env, "publish", dataset.root, "--repo", REPO, ok=False)
    assert "refusing to publish" in proc.stderr and "run-r1.parquet" in proc.stderr
    assert not hub.storage.exists("dataset", REPO)


def test_hub_sends_large_or_lfs_pattern_files_through_lfs(hub, tmp_path, monkeypatch):
    """The server's preupload answer follows the Hub's rule; the client then uses LFS batch + PUT."""
    from huggingface_hub import CommitOperationAdd, HfApi, constants, hf_hub_download

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # frozen at import otherwise
    api = HfApi(endpoint=hub.url, token="hf_writer")
    api.create_repo(REPO, repo_type="dataset")
    big, small = b"x" * (LFS_THRESHOLD + 1), b"y" * 100
    api.create_commit(REPO, [CommitOperationAdd("big.json", big), CommitOperationAdd("small.json", small),
                             CommitOperationAdd("t.parquet", small)],
                      commit_message="sizes", repo_type="dataset")
    lfs = {f.path: f.lfs is not None for f in api.list_repo_tree(REPO, repo_type="dataset")}
    assert lfs == {".gitattributes": False, "big.json": True, "small.json": False, "t.parquet": True}
    assert hub.bytes_in["lfs_put"] == len(big) + len(small)
    got = hf_hub_download(REPO, "big.json", repo_type="dataset", endpoint=hub.url,
                          cache_dir=tmp_path / "cache")
    assert Path(got).read_bytes() == big
