import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from fib_data import Dataset, jsonschema
from fib_data.blobs import BlobError
from fib_data.curated.build import build_dataset
from fib_data.errors import DataError
from fib_data.schema import SCHEMAS, TABLES

from conftest import ROOT


@pytest.fixture
def built(tmp_path):
    return build_dataset(tmp_path / "flashinfer-bench")


def test_schema_files_match_the_source():
    assert jsonschema.drift(ROOT / "schemas") == [], "run `fib schemas` and commit the result"


def test_schema_drift_is_detected(tmp_path):
    jsonschema.write(tmp_path)
    assert jsonschema.drift(tmp_path) == []
    p = tmp_path / "workloads.row.schema.json"
    doc = json.loads(p.read_text())
    del doc["properties"]["weight"]
    p.write_text(json.dumps(doc))
    assert jsonschema.drift(tmp_path) == ["workloads.row.schema.json"]


def test_rows_validate_against_generated_json_schema(built):
    import jsonschema as js

    for table in ("definitions", "workloads", "solutions"):
        schema = json.loads((ROOT / "schemas" / f"{table}.row.schema.json").read_text())
        for row in built.read(table).to_pylist():
            js.validate(row, schema)


def test_append_reads_back_and_is_a_new_part(built):
    rows = built.read("workloads").to_pylist()
    new = dict(rows[0], uuid="00000000-0000-0000-0000-000000000001", weight=5)
    before = built.files("workloads")
    path = built.append("workloads", [new])
    assert path not in before and len(built.files("workloads")) == len(before) + 1
    assert built.count("workloads") == len(rows) + 1
    con = built.connect()
    assert con.execute("SELECT weight FROM workloads WHERE uuid LIKE '%0001'").fetchone() == (5,)
    assert built.polars("workloads").height == len(rows) + 1


def test_append_rejects_bad_rows_and_names_row_and_field(built):
    rows = built.read("workloads").to_pylist()
    bad = dict(rows[0], uuid="x-1", weight="heavy")
    missing = {k: v for k, v in rows[0].items() if k != "definition"} | {"uuid": "x-2"}
    before = sorted(os.listdir(built.table_dir("workloads")))
    with pytest.raises(DataError) as exc:
        built.append("workloads", [rows[0] | {"uuid": "ok-1"}, bad, missing])
    text = str(exc.value)
    assert ":1: workloads.weight" in text and ":2: workloads.definition" in text
    assert sorted(os.listdir(built.table_dir("workloads"))) == before


def test_append_rejects_existing_key_and_bad_enum(built):
    row = built.read("solutions").to_pylist()[0]
    with pytest.raises(DataError, match="key already stored"):
        built.append("solutions", [row])
    with pytest.raises(DataError, match=r"solutions.language: must be one of"):
        built.append("solutions", [row | {"name": "other", "language": "fortran"}])


def test_failed_write_leaves_folder_as_it_was(built, monkeypatch):
    rows = built.read("workloads").to_pylist()
    before = {p.name: p.read_bytes() for p in built.files("workloads")}

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError):
        built.append("workloads", [rows[0] | {"uuid": "new"}])
    with pytest.raises(OSError):
        built.replace("workloads", rows)
    after = {p.name: p.read_bytes() for p in built.files("workloads")}
    assert after == before
    leftovers = [p for p in built.table_dir("workloads").parent.rglob("*") if ".tmp" in p.name or ".new-" in p.name]
    assert leftovers == []


def test_blobs_are_content_addressed_and_verified(built):
    a = {"kv_indptr": np.array([0, 3, 7], dtype=np.int32)}
    before = set(built.blobs.all())  # the curated build already stores workload blobs
    sha1 = built.blobs.put(a)
    sha2 = built.blobs.put({"kv_indptr": np.array([0, 3, 7], dtype=np.int32)})
    assert sha1 == sha2 and set(built.blobs.all()) - before == {sha1}
    np.testing.assert_array_equal(built.blobs.load(sha1)["kv_indptr"], a["kv_indptr"])
    path = built.blobs.path_for(sha1)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BlobError, match="corrupt"):
        built.blobs.load(sha1)
    with pytest.raises(BlobError, match="not a sha256"):
        built.blobs.path_for("../../etc/passwd")


def test_blob_torch_roundtrip(built):
    torch = pytest.importorskip("torch")
    t = torch.randn(4, 8).to(torch.bfloat16)
    sha = built.blobs.put({"x": t})
    assert torch.equal(built.blobs.load(sha, framework="torch")["x"], t)


def test_duckdb_views_cover_every_table(built):
    con = built.connect()
    for table in TABLES:
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        assert cols == SCHEMAS[table].names


def test_load_dataset_from_parent_folder(built, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    for table in ("definitions", "workloads", "solutions"):
        # cache_dir: HF_DATASETS_CACHE is read at import, so a stale default cache could answer.
        d = datasets.load_dataset("flashinfer-bench", table, split="train", cache_dir=str(tmp_path / "cache"))
        assert d.num_rows == built.count(table)
        assert list(d.features) == SCHEMAS[table].names


def test_card_declares_configs_and_fields(built):
    import yaml

    text = (built.root / "README.md").read_text()
    front = yaml.safe_load(text.split("---")[1])
    assert [c["config_name"] for c in front["configs"]] == list(TABLES)
    assert "`evaluations.speedup_factor`" not in text and "`speedup_factor`" in text


def test_cli_demo_and_info(tmp_path):
    """The README's main job end to end (one definition, to stay fast): build, validate, bench, rank, report."""
    target = tmp_path / "ds"
    out = subprocess.run([sys.executable, "-m", "fib_data", "demo", str(target), "--devices", "cpu",
                          "--definition", "rmsnorm_h4096", "--report", str(tmp_path / "site")],
                         capture_output=True, text=True, check=True).stdout
    assert "validate: OK" in out and "leaderboard" in out and "rmsnorm_h4096__torch" in out
    assert (tmp_path / "site" / "index.html").is_file()
    ds = Dataset(target)
    statuses = set(ds.read("evaluations", columns=["status"])["status"].to_pylist())
    assert statuses == {"PASSED"}, statuses
    out = subprocess.run([sys.executable, "-m", "fib_data", "info", str(target)],
                         capture_output=True, text=True, check=True).stdout
    assert "workloads" in out


def test_a_short_blob_left_by_a_crash_is_rewritten(tmp_path):
    import numpy as np

    from fib_data import atomic
    from fib_data.blobs import BlobStore

    store = BlobStore(tmp_path / "blobs")
    with atomic.one_sync():  # writes inside skip their own fsync, as an ingest's staged blobs do
        sha = store.put({"x": np.arange(64, dtype=np.int32)})
    path = store.path_for(sha)
    size = path.stat().st_size
    path.write_bytes(b"")  # what a power cut between rename and sync can leave
    assert store.put({"x": np.arange(64, dtype=np.int32)}) == sha
    assert path.stat().st_size == size and store.load(sha)["x"].sum() == 2016
