"""`fib validate`: each kind of problem injected into a real dataset by writing Parquet directly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fib_data import Dataset
from fib_data.hashing import solution_hash
from fib_data.interop import import_json
from fib_data.schema import schema_of
from fib_data.synthetic import write_synthetic
from fib_data.validate import validate_dataset


@pytest.fixture
def ds(tmp_path) -> Dataset:
    """2 definitions x 3 workloads x 2 solutions, with one blob-backed input."""
    ds = write_synthetic(tmp_path / "ds", n_defs=2, n_workloads=3, n_solutions=2, seed=1)
    sha = ds.blobs.put({"B": np.zeros((2, 2), dtype=np.float32)})

    def use_blob(rows):
        rows[0]["inputs"][1].update(type="safetensors", sha256=sha, tensor_key="B")
    rewrite(ds, "workloads", use_blob)
    assert validate_dataset(ds) == []
    return ds


def rewrite(ds: Dataset, table: str, edit) -> None:
    """Replace a table's parts with one file holding edited rows, bypassing append's checks."""
    rows = ds.read(table).to_pylist()
    edit(rows)
    for part in ds.files(table):
        part.unlink()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema_of(table)),
                   ds.table_dir(table) / "part-broken.parquet")


def only(problems, table: str, field: str) -> list:
    found = [p for p in problems if p.table == table and p.field == field]
    assert found, f"no {table}.{field} problem in {[str(p) for p in problems]}"
    assert all(p.file == f"data/{table}/part-broken.parquet" for p in found)
    return found


def test_fixture_imports_validate(fixtures_dir, tmp_path):
    import_json(fixtures_dir / "flashinfer-trace-current", tmp_path / "a")
    import_json(fixtures_dir / "flashinfer-trace-2025-07", tmp_path / "b", skip_invalid=True)
    assert validate_dataset(tmp_path / "a") == []
    assert validate_dataset(tmp_path / "b") == []


def test_duplicate_keys(ds):
    rewrite(ds, "definitions", lambda rows: rows.append(dict(rows[0])))
    [p] = only(validate_dataset(ds), "definitions", "name")
    assert p.row == 2 and "duplicate key (first at data/definitions/part-broken.parquet:0)" in p.message


def test_duplicate_evaluation_key_across_part_files(ds):
    first = ds.read("evaluations").slice(0, 1)
    pq.write_table(first, ds.table_dir("evaluations") / "run-again.parquet")
    problems = validate_dataset(ds)
    assert [p.field for p in problems] == ["solution_hash+workload_uuid+environment_hash"]
    assert problems[0].file == "data/evaluations/run-synthetic.parquet" and problems[0].row == 0
    assert "first at data/evaluations/run-again.parquet:0" in problems[0].message


def test_missing_references(ds):
    rewrite(ds, "workloads", lambda rows: rows[0].update(definition="nope"))
    rewrite(ds, "evaluations", lambda rows: rows[0].update(workload_uuid="w-missing", solution="s-missing"))
    problems = validate_dataset(ds)
    assert only(problems, "workloads", "definition")[0].value == "nope"
    assert only(problems, "evaluations", "workload_uuid")[0].message == "no such workload"
    assert only(problems, "evaluations", "solution")[0].value == "s-missing"


def test_solution_of_another_definition(ds):
    other = ds.read("solutions").to_pylist()[-1]["name"]
    rewrite(ds, "evaluations", lambda rows: rows[0].update(solution=other))
    [p] = only(validate_dataset(ds), "evaluations", "solution")
    assert "solution is of gemm_n6144_k4096, not gemm_n4096_k4096" in p.message


def test_axes(ds):
    def edit(rows):
        rows[0]["axes"] = []                                       # var M missing
        rows[1]["axes"].append({"name": "N", "value": 1})           # const overridden
        rows[2]["axes"].append({"name": "Z", "value": 1})           # no such axis
    rewrite(ds, "workloads", edit)
    problems = validate_dataset(ds)
    assert only(problems, "workloads", "axes.M")[0].message == "var axis has no value in this workload"
    assert "overrides the const value 4096" in only(problems, "workloads", "axes.N")[0].message
    assert only(problems, "workloads", "axes.Z")[0].row == 2


def test_inputs(ds):
    def edit(rows):
        rows[0]["inputs"] = rows[0]["inputs"][:1]
        rows[1]["inputs"][0].update(type="scalar", value="not json")
    rewrite(ds, "workloads", edit)
    problems = validate_dataset(ds)
    assert only(problems, "workloads", "inputs.B")[0].message == "definition input not given"
    assert only(problems, "workloads", "inputs.A.value")[0].row == 1


def test_shapes_and_dtypes(ds):
    def edit(rows):
        rows[0]["inputs"][0]["shape"] = ["M", "Q"]
        rows[0]["outputs"][0]["dtype"] = "float128"
        rows[1]["axes"][1]["value"] = None
    rewrite(ds, "definitions", edit)
    problems = validate_dataset(ds)
    assert only(problems, "definitions", "inputs.A.shape")[0].value == "Q"
    assert any(p.field.endswith("dtype") and p.value == "float128" for p in problems)
    assert only(problems, "definitions", "axes.N.value")[0].row == 1


@pytest.mark.parametrize("reference, message", [
    ("def run(A, B:\n    pass\n", "does not parse"),
    ("def forward(A, B):\n    return A\n", "defines no top-level function `run`"),
])
def test_reference_code(ds, reference, message):
    rewrite(ds, "definitions", lambda rows: rows[0].update(reference=reference))
    assert message in only(validate_dataset(ds), "definitions", "reference")[0].message


@pytest.mark.parametrize("constraint, field, message", [
    ("M >= 3", "axes", "violates constraint 'M >= 3'"),
    ("M +", "constraints", "not an expression"),
    ("__import__('os').getcwd() == ''", "constraints", "which constraints may not"),
    ("X > 1", "constraints", "names neither an axis nor an input: X"),
    ("B.shape[0] == 2", "axes", None),
])
def test_constraints(ds, constraint, field, message):
    rewrite(ds, "definitions", lambda rows: rows[0].update(constraints=[constraint]))
    problems = validate_dataset(ds)
    if message is None:  # evaluated against the blob-backed input B, and holds
        assert problems == []
        return
    table = "workloads" if field == "axes" else "definitions"
    found = only(problems, table, field)
    assert message in found[0].message
    if field == "axes":
        assert [p.row for p in found] == [0, 1]  # M = 1 and 2; M = 3 holds


@pytest.mark.parametrize("entry, message", [
    ("kernel.py::run", "names 'kernel.py', which is not among the sources (main.py)"),
    ("main.py::launch", "main.py defines no top-level function 'launch'"),
    ("main.py", "must be file::function"),
])
def test_entry_points(ds, entry, message):
    def edit(rows):
        rows[0]["entry_point"] = entry
        rows[0]["content_hash"] = solution_hash(rows[0])
    rewrite(ds, "solutions", edit)
    assert message in only(validate_dataset(ds), "solutions", "entry_point")[0].message


def test_stale_hashes(ds):
    rewrite(ds, "solutions", lambda rows: rows[0]["sources"][0].update(content="def run(): pass\n"))
    rewrite(ds, "evaluations", lambda rows: rows[0]["environment"].update(torch="9.9"))
    problems = validate_dataset(ds)
    assert "does not match the content" in only(problems, "solutions", "content_hash")[0].message
    assert only(problems, "evaluations", "environment_hash")[0].row == 0


def test_blob_missing_corrupt_or_without_key(ds):
    sha = ds.read("workloads").to_pylist()[0]["inputs"][1]["sha256"]
    path = ds.blobs.path_for(sha)
    rewrite(ds, "workloads", lambda rows: rows[0]["inputs"][1].update(tensor_key="C"))
    assert "not in blob" in only(validate_dataset(ds), "workloads", "inputs.B.tensor_key")[0].message
    path.write_bytes(path.read_bytes()[:-1] + b"\x01")
    assert "is corrupt" in only(validate_dataset(ds), "workloads", "inputs.B.sha256")[0].message
    path.unlink()
    assert "is missing" in only(validate_dataset(ds), "workloads", "inputs.B.sha256")[0].message


@pytest.mark.parametrize("path", ["../evil.py", "/etc/evil.py", "a/../../evil.py"])
def test_source_paths_cannot_escape(ds, path):
    def edit(rows):
        rows[0]["sources"].append({"path": path, "content": "x = 1\n"})
        rows[0]["content_hash"] = solution_hash(rows[0])
    rewrite(ds, "solutions", edit)
    [p] = only(validate_dataset(ds), "solutions", "sources.path")
    assert p.value == path and "no leading /, no .." in p.message


def test_blob_address_cannot_escape(ds):
    rewrite(ds, "workloads", lambda rows: rows[0]["inputs"][1].update(sha256="../../etc/passwd"))
    problems = validate_dataset(ds)
    assert "not a sha256 hex digest" in only(problems, "workloads", "inputs.B.sha256")[0].message


def test_off_schema_part_file(ds):
    pq.write_table(pa.table({"name": ["x"]}), ds.table_dir("definitions") / "part-extra.parquet")
    [p] = validate_dataset(ds)
    assert p.file == "data/definitions/part-extra.parquet" and "column missing" in p.message


def test_cli_exit_codes(ds):
    cmd = [sys.executable, "-m", "fib_data", "validate", str(ds.root)]
    ok = subprocess.run(cmd, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("OK:")
    rewrite(ds, "workloads", lambda rows: rows[0].update(definition="nope"))
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode == 1
    assert ("data/workloads/part-broken.parquet:0: workloads.definition: no such definition "
            "(value: 'nope')") in bad.stderr.splitlines()
