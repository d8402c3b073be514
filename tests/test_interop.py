"""Import / export between the FlashInfer Trace JSON layout and our dataset folder, on real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from fib_data import Dataset
from fib_data.errors import DataError
from fib_data.interop import export_json, import_json
from fib_data.validate import validate_dataset

CURRENT = "flashinfer-trace-current"
OLD = "flashinfer-trace-2025-07"


def parsed_files(root: Path) -> dict[str, object]:
    """Relative path -> parsed JSON (a list of parsed lines for .jsonl); blobs as bytes."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".json":
            out[rel] = json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            out[rel] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        else:
            out[rel] = path.read_bytes()
    return out


def dict_orders(value, path="") -> list[tuple[str, list]]:
    """Key order of every object: axes, inputs and outputs are ordered by meaning."""
    if isinstance(value, dict):
        return [(path, list(value))] + [o for k, v in value.items() for o in dict_orders(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [o for i, v in enumerate(value) for o in dict_orders(v, f"{path}[{i}]")]
    return []


def assert_same_json(src: Path, out: Path) -> None:
    a, b = parsed_files(src), parsed_files(out)
    assert sorted(a) == sorted(b)
    for rel in a:
        assert a[rel] == b[rel], rel
        if rel.startswith(("definitions", "workloads", "traces")):
            assert dict_orders(a[rel]) == dict_orders(b[rel]), rel


def test_current_fixture_round_trip_is_lossless(fixtures_dir, tmp_path):
    result = import_json(fixtures_dir / CURRENT, tmp_path / "ds")
    assert result.counts == {"definitions": 1, "solutions": 1, "workloads": 43, "evaluations": 0}
    assert result.rejects_path is None
    ds = Dataset(tmp_path / "ds")
    sol = ds.read("solutions").to_pylist()[0]
    assert sol["language"] == "cuda" and sol["entry_point"] == "kernel.cu::gemm_n_4096_k_4096"
    assert [s["path"] for s in sol["sources"]] == ["kernel.h", "kernel.cu"]
    assert validate_dataset(ds) == []
    export_json(ds, tmp_path / "out")
    assert_same_json(fixtures_dir / CURRENT, tmp_path / "out")


def write_rich_source(root: Path) -> dict:
    """A current-format folder using every field the upstream models have."""
    tensor = np.arange(9, dtype=np.int32)
    blob = save({"kv_indptr": tensor})
    import hashlib

    sha = hashlib.sha256(blob).hexdigest()
    blob_rel = f"blob/workloads/scaled_add/{sha}.safetensors"
    (root / blob_rel).parent.mkdir(parents=True)
    (root / blob_rel).write_bytes(blob)
    definition = {
        "name": "scaled_add", "description": "y = x * alpha + b", "op_type": "elementwise",
        "tags": [], "axes": {"n": {"type": "var", "description": "tokens"},
                             "d": {"type": "const", "value": 8},
                             "len_indptr": {"type": "var"}},
        "inputs": {"x": {"shape": ["n", "d"], "dtype": "bfloat16", "description": "input"},
                   "alpha": {"shape": None, "dtype": "float32"},
                   "kv_indptr": {"shape": ["len_indptr"], "dtype": "int32"}},
        "outputs": {"y": {"shape": ["n", "d"], "dtype": "bfloat16"}},
        "reference": "def run(x, alpha, kv_indptr):\n    return x * alpha\n",
        "constraints": ["len_indptr >= 1", "kv_indptr[-1].item() == 8"],
    }
    solution = {
        "name": "scaled_add_cuda", "definition": "scaled_add", "author": "someone",
        "spec": {"language": "cuda", "target_hardware": ["NVIDIA_H100"],
                 "entry_point": "k.cu::run", "dependencies": ["cublas"],
                 "destination_passing_style": False, "binding": "torch"},
        "sources": [{"path": "k.cu", "content": "// kernel\n"}, {"path": "inc/k.h", "content": "x"}],
    }
    workload = {"uuid": "w-1", "axes": {"n": 4, "len_indptr": 9},
                "inputs": {"x": {"type": "random"}, "alpha": {"type": "scalar", "value": 0.5},
                           "kv_indptr": {"type": "safetensors", "path": blob_rel,
                                         "tensor_key": "kv_indptr"}}}
    workload2 = {"uuid": "w-2", "axes": {"n": 7, "len_indptr": 9},
                 "inputs": {"x": {"type": "random"}, "alpha": {"type": "scalar", "value": 2},
                            "kv_indptr": {"type": "safetensors", "path": blob_rel,
                                          "tensor_key": "kv_indptr"}}}
    env = {"hardware": "NVIDIA_H100", "libs": {"torch": "2.8.0", "cuda": "12.8", "tilelang": "0.1"}}
    traces = [
        {"definition": "scaled_add", "workload": workload, "solution": "scaled_add_cuda",
         "evaluation": {"status": "PASSED", "environment": env, "timestamp": "2025-10-01T10:00:00.250000",
                        "log": "", "correctness": {"max_relative_error": 0.001, "max_absolute_error": "NaN",
                                                   "extra": {"cos": 0.99}},
                        "performance": {"latency_ms": 0.5, "reference_latency_ms": 1.25,
                                        "speedup_factor": 2.5}}},
        {"definition": "scaled_add", "workload": workload2, "solution": "scaled_add_cuda",
         "evaluation": {"status": "RUNTIME_ERROR", "environment": env,
                        "timestamp": "2025-10-01T10:00:01", "log": "Traceback ...\nboom"}},
    ]
    _write(root / "definitions" / "scaled_add.json", json.dumps(definition, indent=2))
    _write(root / "solutions" / "scaled_add_cuda.json", json.dumps(solution, indent=2))
    _write(root / "workloads" / "scaled_add.jsonl", "\n".join(json.dumps(
        {"definition": "scaled_add", "solution": None, "workload": w, "evaluation": None})
        for w in (workload, workload2)) + "\n")
    _write(root / "traces" / "scaled_add.jsonl", "\n".join(json.dumps(t) for t in traces) + "\n")
    return {"sha": sha}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_every_upstream_field_round_trips(tmp_path):
    src = tmp_path / "src"
    info = write_rich_source(src)
    result = import_json(src, tmp_path / "ds")
    assert result.counts == {"definitions": 1, "solutions": 1, "workloads": 2, "evaluations": 2}
    ds = Dataset(tmp_path / "ds")
    assert ds.blobs.all() == [info["sha"]]
    wl = ds.read("workloads").to_pylist()[0]
    assert wl["inputs"][1] == {"name": "alpha", "type": "scalar", "value": "0.5", "sha256": None,
                               "tensor_key": None}
    assert wl["inputs"][2]["sha256"] == info["sha"] and wl["source_kind"] == "import"
    ev = ds.read("evaluations").to_pylist()
    assert ev[0]["environment"]["torch"] == "2.8.0"
    assert ev[0]["environment"]["other_libs"] == [{"name": "tilelang", "version": "0.1"}]
    assert np.isnan(ev[0]["max_absolute_error"]) and json.loads(ev[0]["correctness_extra"]) == {"cos": 0.99}
    assert ev[1]["latency_ms"] is None and ev[0]["run_id"] == ev[1]["run_id"]
    assert ev[0]["run_id"].startswith("import-")
    assert validate_dataset(ds) == []
    export_json(ds, tmp_path / "out")
    assert_same_json(src, tmp_path / "out")


def test_trace_may_be_the_only_record_of_its_workload(tmp_path):
    src = tmp_path / "src"
    write_rich_source(src)
    (src / "workloads" / "scaled_add.jsonl").unlink()
    result = import_json(src, tmp_path / "ds")
    assert result.counts["workloads"] == 2 and result.counts["evaluations"] == 2
    rows = Dataset(tmp_path / "ds").read("workloads").to_pylist()
    assert [(r["uuid"], r["source_file"]) for r in rows] == [
        ("w-1", "traces/scaled_add.jsonl"), ("w-2", "traces/scaled_add.jsonl")]


def test_old_generation_is_refused_with_every_problem(fixtures_dir, tmp_path):
    with pytest.raises(DataError) as err:
        import_json(fixtures_dir / OLD, tmp_path / "ds")
    problems = err.value.problems
    assert not (tmp_path / "ds").exists()
    assert not list(tmp_path.iterdir())  # no staging folder left behind
    bad_def = [p for p in problems if p.table == "solutions"]
    assert len(bad_def) == 1 and bad_def[0].value == "batch_gqa_ragged_prefill_h32_kv8_d128"
    assert str(bad_def[0]).startswith("solutions/gqa/batch_gqa_ragged_prefill_h32_kv8_d128/"
                                      "batch_gqa_ragged_prefill_h32_kv8_d128_flashinfer.json:3: ")
    traces = [p for p in problems if p.table == "evaluations"]
    assert len(traces) == 301 and {p.field for p in traces} == {"solution"}
    assert str(traces[0]) == ("traces/gemm/gemm_n_28672_k_4096.jsonl:1: evaluations.solution: "
                              "no solution with this exact name (value: 'gemm_n_28672_k_4096_torch')")


def test_old_generation_skip_invalid_imports_what_resolves(fixtures_dir, tmp_path):
    result = import_json(fixtures_dir / OLD, tmp_path / "ds", skip_invalid=True)
    assert result.counts == {"definitions": 7, "solutions": 6, "workloads": 172, "evaluations": 0}
    lines = result.rejects_path.read_text().splitlines()
    assert result.rejects_path.parent == tmp_path / "ds" / "imports"
    assert len(lines) == len(result.rejects) == 302
    assert lines[1].startswith("traces/gemm/gemm_n_28672_k_4096.jsonl:1: skipped evaluation row: ")
    ds = Dataset(tmp_path / "ds")
    defs = {r["name"]: r for r in ds.read("definitions").to_pylist()}
    assert defs["gemm_n_4096_k_4096"]["op_type"] == "gemm"  # 2025-07 `type`
    sols = {r["name"]: r for r in ds.read("solutions").to_pylist()}
    assert sols["torch_gemm_n_4096_k_4096"]["language"] == "python"  # was "Python"
    assert sols["flashinfer_gqa_paged_decode_h32_kv8_d128_ps1"]["entry_point"] == "main.py::run"
    assert validate_dataset(ds) == []


def test_old_traces_match_workloads_by_definition_and_axes(fixtures_dir, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(fixtures_dir / OLD, src)
    # The fix a user would make by hand: name the solution files' real names in the traces.
    for path in (src / "traces" / "gemm").glob("*.jsonl"):
        text = path.read_text()
        for shape in ("n_28672_k_4096", "n_4096_k_14336", "n_4096_k_4096", "n_6144_k_4096"):
            text = text.replace(f'"gemm_{shape}_torch"', f'"torch_gemm_{shape}"')
        path.write_text(text.replace('"gemm_n_4096_k_4096_triton_gpt_o3"',
                                     '"triton_gpt_o3_gemm_n_4096_k_4096"'))
    result = import_json(src, tmp_path / "ds", skip_invalid=True)
    # 86 traces repeat an earlier (solution, workload, environment): one evaluation key each.
    assert result.counts["evaluations"] == 301 - 86
    dup = [line for line in result.rejects if "duplicate evaluation key" in line]
    assert len(dup) == 86
    ds = Dataset(tmp_path / "ds")
    m_of = {w["uuid"]: (w["definition"], w["axes"][0]["value"]) for w in ds.read("workloads").to_pylist()}
    first = [json.loads(line) for line in (src / "traces/gemm/gemm_n_6144_k_4096.jsonl").read_text().splitlines()]
    evs = [e for e in ds.read("evaluations").to_pylist() if e["definition"] == "gemm_n_6144_k_4096"]
    assert [m_of[e["workload_uuid"]] for e in evs] == [
        ("gemm_n_6144_k_4096", t["workload"]["axes"]["M"]) for t in first]
    assert evs[0]["environment"]["hardware"] == "NVIDIA B200"  # 2025-07 `device`
    assert evs[0]["log"].startswith("log_file: gemm_n_6144_k_4096_torch_")
    assert validate_dataset(ds) == []


@pytest.mark.parametrize("edit, field, message", [
    (lambda d: d.update(extra_field=1), "extra_field", "field not in the FlashInfer Trace schema"),
    (lambda d: d["axes"]["d"].update(value=-1), "axes.d.value", "non-negative"),
    (lambda d: d["inputs"]["x"].update(dtype="float128"), "inputs.x.dtype", "unknown dtype"),
])
def test_definition_problems_name_the_field(tmp_path, edit, field, message):
    src = tmp_path / "src"
    write_rich_source(src)
    path = src / "definitions" / "scaled_add.json"
    obj = json.loads(path.read_text())
    edit(obj)
    path.write_text(json.dumps(obj, indent=2))
    with pytest.raises(DataError) as err:
        import_json(src, tmp_path / "ds")
    mine = [p for p in err.value.problems if p.table == "definitions"]
    assert [p.field for p in mine] == [field] and message in mine[0].message
    assert mine[0].file == "definitions/scaled_add.json"
    lines = path.read_text().splitlines()
    assert f'"{field.split(".")[-1]}"' in lines[mine[0].row - 1]  # points at the offending line
    if field == "axes.d.value":
        assert '"value": -1' in lines[mine[0].row - 1]


@pytest.mark.parametrize("edit, message", [
    (lambda i: i.update(path="../outside.safetensors"), "leaves the source folder"),
    (lambda i: i.update(path="blob/missing.safetensors"), "does not exist"),
    (lambda i: i.update(tensor_key="nope"), "tensor_key 'nope' not in"),
])
def test_blob_inputs_must_resolve(tmp_path, edit, message):
    src = tmp_path / "src"
    write_rich_source(src)
    path = src / "workloads" / "scaled_add.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    edit(lines[1]["workload"]["inputs"]["kv_indptr"])
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = import_json(src, tmp_path / "ds", skip_invalid=True)
    assert result.counts["workloads"] == 1
    assert len(result.rejects) == 2  # the workload, and the trace that runs it
    assert message in result.rejects[0] and result.rejects[0].startswith("workloads/scaled_add.jsonl:2:")
    assert result.rejects[1] == ("traces/scaled_add.jsonl:2: skipped evaluation row: workload.uuid: "
                                 "its workload was rejected ('w-2')")


def test_import_into_existing_dataset_is_all_or_nothing(tmp_path):
    src = tmp_path / "src"
    write_rich_source(src)
    import_json(src, tmp_path / "ds")
    before = parsed_files(tmp_path / "ds")
    with pytest.raises(DataError):  # every key is already there
        import_json(src, tmp_path / "ds")
    assert parsed_files(tmp_path / "ds") == before
    again = import_json(src, tmp_path / "ds", skip_invalid=True)
    assert again.counts == {"definitions": 0, "solutions": 0, "workloads": 0, "evaluations": 0}
    assert [r.split(": skipped")[0] for r in again.rejects] == [
        "definitions/scaled_add.json:2", "solutions/scaled_add_cuda.json:2",
        "workloads/scaled_add.jsonl:1", "workloads/scaled_add.jsonl:2",
        "traces/scaled_add.jsonl:1", "traces/scaled_add.jsonl:2"]
    after = parsed_files(tmp_path / "ds")
    assert {k: v for k, v in after.items() if k.startswith("data/")} == {
        k: v for k, v in before.items() if k.startswith("data/")}
    assert not [p for p in (tmp_path / "ds").iterdir() if p.name.startswith(".import-")]


def test_cli_reports_problems_and_rejects(fixtures_dir, tmp_path):
    cmd = [sys.executable, "-m", "fib_data", "import-json", str(fixtures_dir / OLD), str(tmp_path / "ds")]
    refused = subprocess.run(cmd, capture_output=True, text=True)
    assert refused.returncode == 1
    assert ("traces/gemm/gemm_n_4096_k_4096.jsonl:129: evaluations.solution: no solution with this "
            "exact name (value: 'gemm_n_4096_k_4096_triton_gpt_o3')") in refused.stderr.splitlines()
    done = subprocess.run(cmd + ["--skip-invalid"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "skipped 302 row(s); reasons in " in done.stdout
    out = subprocess.run([sys.executable, "-m", "fib_data", "export-json", str(tmp_path / "ds"),
                          str(tmp_path / "json")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(list((tmp_path / "json" / "workloads").glob("*.jsonl"))) == 4
