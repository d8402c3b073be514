"""Runs measured elsewhere (another machine's part files) join a dataset: checked, deduplicated,
and only where the dataset holds their solution and workload."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

import executor_data as data
from fib_data.errors import DataError
from fib_data.executor.bench import BenchOptions, run_bench
from fib_data.executor.store import import_runs

FAST = BenchOptions(trials=1, reps=3, warmup_ms=0.0, timeout=60.0, build_timeout=0.0)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A real CPU run's part file, from a dataset built like the one it is imported into."""
    root = tmp_path_factory.mktemp("elsewhere")
    ds = data.build(root / "ds")
    result = run_bench(ds.root, devices=["cpu"], options=FAST)
    return result["part_file"], result["statuses"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fib_data", "import-evaluations", *map(str, args)],
                          capture_output=True, text=True)


def test_a_run_from_elsewhere_is_imported_once(tmp_path, measured):
    part, statuses = measured
    ds = data.build(tmp_path / "ds")
    found = _cli(ds.root, part)
    assert found.returncode == 0, found.stderr
    n = sum(statuses.values())
    assert ds.count("evaluations") == n and (ds.table_dir("evaluations") / part.name).exists()
    assert ds.connect().sql("SELECT count(*) FROM evaluations").fetchall() == [(n,)]
    again = import_runs(ds, [part])
    assert again[0]["imported"] == 0 and again[0]["already_stored"] == n and ds.count("evaluations") == n
    # Another machine's run under the same file name: new keys, so a new part file beside the first.
    elsewhere = tmp_path / "other" / part.name
    elsewhere.parent.mkdir()
    table = pq.read_table(part)
    pq.write_table(table.set_column(table.column_names.index("environment_hash"), "environment_hash",
                                    [["another-machine"] * n]), elsewhere)
    found = import_runs(ds, [elsewhere])[0]
    assert found["imported"] == n and found["part_file"] != str(ds.table_dir("evaluations") / part.name)
    assert ds.count("evaluations") == 2 * n


def test_rows_of_solutions_or_workloads_the_dataset_lacks_are_left_out(tmp_path, measured):
    part, statuses = measured
    ds = data.build(tmp_path / "ds", batches=(4,))  # the run also measured batch 16's workload
    found = import_runs(ds, [part])[0]
    rows = pq.read_table(part).to_pylist()
    lacking = sum(1 for r in rows if r["workload_uuid"] == "wl-rms-16")
    assert lacking > 0 and found["unknown_solution_or_workload"] == lacking
    assert found["imported"] == len(rows) - lacking == ds.count("evaluations")


def test_of_two_runs_with_the_same_keys_the_newer_is_kept(tmp_path, measured):
    part, _ = measured
    older = tmp_path / "run-00000000T000000Z-aaaaaa.parquet"
    table = pq.read_table(part)
    pq.write_table(table.set_column(table.column_names.index("run_id"), "run_id",
                                    [["old"] * table.num_rows]), older)
    ds = data.build(tmp_path / "ds")
    found = {r["file"]: r for r in import_runs(ds, [older, part])}
    assert found[str(part)]["imported"] == table.num_rows and found[str(older)]["imported"] == 0
    assert set(ds.read("evaluations", columns=["run_id"])["run_id"].to_pylist()) == {table["run_id"][0].as_py()}


def test_a_file_that_breaks_the_schema_names_itself_and_writes_nothing(tmp_path, measured):
    part, _ = measured
    bad = tmp_path / "run-bad.parquet"
    pq.write_table(pq.read_table(part).drop(["status"]), bad)
    ds = data.build(tmp_path / "ds")
    with pytest.raises(DataError, match="run-bad.parquet"):
        import_runs(ds, [shutil.copy(part, tmp_path / "run-good.parquet"), bad])
    assert ds.count("evaluations") == 0
    found = _cli(ds.root, bad)
    assert found.returncode == 1 and "run-bad.parquet" in found.stderr and "status" in found.stderr
