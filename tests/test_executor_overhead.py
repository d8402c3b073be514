"""The executor's parent-side speedups keep their guarantees: rows written off the worker's path
(reported only once on disk), consolidation from memory, a fast worker stop, blobs sent once."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import executor_data as data
from fib_data.dataset import Dataset
from fib_data.executor import store
from fib_data.executor.bench import BenchOptions, run_bench
from fib_data.executor.worker import WorkerHandle

FAST = dict(trials=1, reps=2, min_reps=2, warmup_ms=0.5, timeout=30.0, build_timeout=0.0)
KEY = ("solution_hash", "workload_uuid", "environment_hash")


def _many(tmp_path: Path, solutions: int = 4, batches=(1, 2, 3, 4)) -> Dataset:
    sols = [data.solution(data.RMSNORM, f"rms_{i}", data.HONEST_DPS + f"# {i}\n", True) for i in range(solutions)]
    return data.build(tmp_path / "ds", sols, batches=batches)


def _on_disk(run_dir: Path) -> dict[tuple, str]:
    return {tuple(r[k] for k in KEY): f.name for f in store.batches(run_dir)
            for r in pq.read_table(f).to_pylist()}


def test_rows_are_reported_once_on_disk_and_writes_overlap_evaluations(tmp_path):
    ds = _many(tmp_path)
    seen: list[tuple[tuple, str]] = []

    def on_row(row):  # a slow consumer: the writer thread is busy while the worker goes on
        (run_dir,) = (ds.root / "runs").iterdir()
        key = tuple(row[k] for k in KEY)
        seen.append((key, _on_disk(run_dir).get(key)))
        time.sleep(0.15)

    result = run_bench(ds.root, devices=["cpu"], options=BenchOptions(**FAST), on_row=on_row)
    assert result["statuses"] == {"PASSED": 16} and len(seen) == 16
    assert all(batch is not None for _, batch in seen), "a row was reported before it was on disk"
    # The worker kept evaluating while rows were written and reported, so batches hold several rows.
    assert len({batch for _, batch in seen}) < 16
    part = pq.read_table(result["part_file"]).to_pylist()
    assert sorted(tuple(r[k] for k in KEY) for r in part) == sorted(k for k, _ in seen)
    assert not store.batches(ds.root / "runs" / result["run_id"])


def test_a_failing_writer_stops_the_run_with_its_error_instead_of_hanging(tmp_path):
    ds = _many(tmp_path, solutions=2, batches=(1, 2))
    reported = []

    def on_start(selected, todo):  # the run folder becomes a file: every batch write fails
        (run_dir,) = (ds.root / "runs").iterdir()
        shutil.rmtree(run_dir)
        run_dir.write_text("not a folder")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="writing evaluation rows failed") as err:
        run_bench(ds.root, devices=["cpu"], options=BenchOptions(**FAST), on_start=on_start,
                  on_row=reported.append)
    assert isinstance(err.value.__cause__, OSError)
    assert reported == [] and time.monotonic() - started < 60
    assert not any(f.name.startswith("run-") for f in ds.files("evaluations"))


@pytest.fixture(scope="module")
def finished_rows(tmp_path_factory) -> list[dict]:
    ds = _many(tmp_path_factory.mktemp("rows"), solutions=2, batches=(1, 2))
    return run_bench(ds.root, devices=["cpu"], options=BenchOptions(**FAST))["rows"]


def test_finish_consolidates_what_it_wrote_without_reading_the_batches(tmp_path, finished_rows):
    ds = data.build(tmp_path / "ds")
    ds.append("evaluations", finished_rows[:1])  # already stored: must not be written again
    run = store.RunStore(ds, store.new_run_id())
    run.start()
    writer = run.open_writer()
    for row in finished_rows + finished_rows[1:2]:  # and one duplicate inside the run
        writer.put(row)
    writer.close()
    files = store.batches(run.dir)
    assert files
    for f in files:  # were finish() to read them back, it would fail here
        f.write_bytes(b"garbage")
    path = run.finish()
    keys = [tuple(r[k] for k in KEY) for r in pq.read_table(path).to_pylist()]
    assert sorted(keys) == sorted(tuple(r[k] for k in KEY) for r in finished_rows[1:])
    assert not store.batches(run.dir)


def test_recover_after_a_crash_still_reads_the_batch_files(tmp_path, finished_rows):
    ds = data.build(tmp_path / "ds")
    run = store.RunStore(ds, store.new_run_id())
    run.start()
    run.add(finished_rows[:2])
    run.add(finished_rows[2:])
    del run  # the process died before finish()
    assert len(store.recover(ds)) == 1
    rows = ds.read("evaluations").to_pylist()
    assert sorted(tuple(r[k] for k in KEY) for r in rows) == sorted(tuple(r[k] for k in KEY) for r in finished_rows)


ATEXIT = '''import atexit
import torch

def _leave_mark():
    open({path!r}, "w").write("teardown ran")

atexit.register(_leave_mark)


def run(x, weight):
    xf = x.float()
    return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * weight.float()).to(x.dtype)
'''


def _job(ds: Dataset, definition: str, solution: dict, blobs=None) -> dict:
    defn = next(d for d in ds.read("definitions").to_pylist() if d["name"] == definition)
    wl = next(w for w in ds.read("workloads").to_pylist() if w["definition"] == definition)
    if blobs is None:
        blobs = {i["sha256"]: ds.blobs.get_bytes(i["sha256"]) for i in wl["inputs"] if i["sha256"]}
    return {"definition": defn, "workload": wl, "solution": solution, "blobs": blobs,
            "options": BenchOptions(**FAST).resolved(gpu=False)}


def test_stop_skips_the_worker_teardown(tmp_path):
    ds = data.build(tmp_path / "ds", batches=(4,))
    mark = tmp_path / "teardown"
    sol = data.solution(data.RMSNORM, "atexit", ATEXIT.format(path=str(mark)), False)
    handle = WorkerHandle("cpu", preload=())
    handle.start()
    process = handle.process
    raw = handle.evaluate(_job(ds, "rmsnorm_h64", sol), timeout=30)
    assert not raw["build_error"] and not any(t.get("error") for t in raw["trials"])
    started = time.monotonic()
    handle.stop()
    took = time.monotonic() - started
    assert process.exitcode == 0 and not process.is_alive()
    assert not mark.exists(), "the worker ran its interpreter teardown on stop"
    assert took < 2.0


def test_a_stop_without_waiting_leaves_the_exit_to_a_reaper(tmp_path):
    ds = data.build(tmp_path / "ds", batches=(4,))
    handle = WorkerHandle("cpu", preload=())
    handle.start()
    process = handle.process
    raw = handle.evaluate(_job(ds, "rmsnorm_h64", data.solution(data.RMSNORM, "v", data.HONEST_VALUE, False)),
                          timeout=30)
    assert _status(raw) == "ok"
    handle.stop(wait=False)
    assert handle.process is None and handle.conn is None
    deadline = time.monotonic() + 10  # the reaper thread joins it; joining here as well would race it
    while process.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.exitcode == 0  # its own exit, not a kill


def test_a_launched_worker_waits_for_its_preload_list_and_starts_once(tmp_path):
    ds = data.build(tmp_path / "ds", batches=(4,))
    handle = WorkerHandle("cpu", preload=())
    handle.launch()  # as run_bench does before it reads the dataset
    try:
        info = handle.start(preload=("json",))
        assert handle.start() is info and handle.starts == 1  # no second preload message, no relaunch
        raw = handle.evaluate(_job(ds, "rmsnorm_h64", data.solution(data.RMSNORM, "v", data.HONEST_VALUE, False)),
                              timeout=30)
        assert _status(raw) == "ok" and info["pid"] == handle.process.pid
    finally:
        handle.stop()
    stopped = WorkerHandle("cpu", preload=())
    stopped.launch()
    stopped.stop()  # stopped before start (the parent failed reading the jobs): the process ends
    assert stopped.process is None


def test_a_job_sent_behind_another_runs_without_waiting_for_the_parent(tmp_path):
    # The scheduler sends the next job before it handles the last result (test_executor.py's crash
    # and hang test covers a job queued behind one that costs the worker: it runs on the new one).
    ds = data.build(tmp_path / "ds", batches=(4,))
    sol = data.solution(data.RMSNORM, "v", data.HONEST_VALUE, False)
    first, second = _job(ds, "rmsnorm_h64", sol), _job(ds, "rmsnorm_h64", sol)
    handle = WorkerHandle("cpu", preload=())
    handle.start()
    try:
        assert _status(handle.evaluate(_job(ds, "rmsnorm_h64", sol), timeout=30)) == "ok"  # built
        assert handle.submit(first, timeout=30) and handle.submit(second, timeout=30)
        assert handle.holds(first) and handle.holds(second)
        time.sleep(2.0)  # the parent is busy elsewhere: the worker goes through both meanwhile
        started = time.monotonic()
        results = [handle.collect(), handle.collect()]
        assert time.monotonic() - started < 0.5
        assert [_status(r) for r in results] == ["ok", "ok"] and not handle.holds(second)
    finally:
        handle.stop()


def _status(raw: dict) -> str:
    """The worker's first error (a bad blob fails where the job's inputs are made), else 'ok'."""
    errors = [raw.get(k) for k in ("reference_error", "build_error")] + [t.get("error") for t in raw["trials"]]
    return next((e for e in errors if e), "ok")


def test_blobs_go_to_a_worker_once_and_again_after_it_is_replaced(tmp_path):
    ds = data.build(tmp_path / "ds", batches=(4,))
    sol = data.solution(data.GATHER, "gather", data.GATHER_SOLUTION, False)
    good = _job(ds, "scaled_gather_d32", sol)
    (sha,) = good["blobs"]
    # Same sha, wrong bytes: the worker rejects these if they ever reach it.
    wrong = good["blobs"][sha][:-1] + bytes([good["blobs"][sha][-1] ^ 1])
    corrupt = _job(ds, "scaled_gather_d32", sol, blobs={sha: wrong})
    handle = WorkerHandle("cpu", preload=())
    handle.start()
    try:
        assert _status(handle.evaluate(good, timeout=30)) == "ok"
        assert handle.blobs_held == {sha}
        assert _status(handle.evaluate(corrupt, timeout=30)) == "ok"  # served from the worker's copy
        handle.kill()  # a replaced worker holds nothing: the (corrupt) bytes are sent this time
        assert handle.blobs_held == set()
        assert "corrupt" in _status(handle.evaluate(corrupt, timeout=30))
        handle.kill()
        assert _status(handle.evaluate(good, timeout=30)) == "ok"
        rms = _job(ds, "rmsnorm_h64", data.solution(data.RMSNORM, "v", data.HONEST_VALUE, False))
        assert _status(handle.evaluate(rms, timeout=30)) == "ok" and handle.blobs_held == set()
    finally:
        handle.stop()
    assert good["blobs"][sha] != corrupt["blobs"][sha]  # the parent's jobs are left as they were


def test_workers_start_without_rerunning_the_parents_main_module(tmp_path):
    # spawn re-runs the parent's __main__ (the fib CLI, a benchmark script) in every worker
    # unless it is hidden; the script below notes every import of itself as a non-main module.
    marker = tmp_path / "imported_as"
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys\n"
        "if __name__ != '__main__':\n"
        f"    open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
        "else:\n"
        "    from fib_data.executor.worker import WorkerHandle\n"
        "    h = WorkerHandle('cpu', preload=())\n"
        "    print(sorted(h.start()['start_s']))\n"
        "    h.stop()\n"
        "    print('main file kept:', __file__ is not None and __spec__ is None)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert "import_torch" in out.stdout and "main file kept: True" in out.stdout
    assert not marker.exists(), f"the worker imported the parent's script as {marker.read_text()!r}"


def test_worker_modules_import_without_pyarrow_or_the_cli():
    code = ("import sys, fib_data.executor.worker, fib_data.executor.evaluate; "
            "print(sorted(m for m in ('pyarrow', 'polars', 'duckdb', 'typer') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
    import fib_data

    assert fib_data.Dataset is Dataset and "definitions" in fib_data.TABLES


def test_the_parent_never_imports_torch(tmp_path):
    # Anything torch-typed in a worker's messages (torch.__version__ is a TorchVersion) makes the
    # parent import torch while unpickling it: seconds between the worker being ready and its
    # first job. Solutions, references and environment probes run only in the worker.
    ds = _many(tmp_path, solutions=1, batches=(1, 2))
    code = ("import sys\n"
            "from fib_data.executor.bench import BenchOptions, run_bench\n"
            f"r = run_bench({str(ds.root)!r}, devices=['cpu'], options=BenchOptions(**{FAST!r}))\n"
            "print(r['statuses'], 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "{'PASSED': 2} False"


def test_auto_devices_count_gpus_from_the_driver_without_torch(tmp_path, monkeypatch):
    from fib_data.executor.bench import gpu_count

    gpus = tmp_path / "gpus"
    for bus in ("0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0"):
        (gpus / bus).mkdir(parents=True)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_count(str(gpus)) == 3
    for visible, n in (("1,2", 2), ("0,1,2,3,4", 3), ("", 0), ("-1", 0), ("2,-1,0", 1), ("GPU-5ab1", 1)):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert gpu_count(str(gpus)) == n, visible


def test_worker_profile_shows_where_the_jobs_spent_their_time(tmp_path, monkeypatch):
    ds = _many(tmp_path, solutions=1, batches=(1, 2))
    monkeypatch.setenv("FIB_WORKER_PROFILE", str(tmp_path / "profile"))  # the spawned worker inherits it
    result = run_bench(ds.root, devices=["cpu"], options=BenchOptions(**FAST))
    assert result["statuses"] == {"PASSED": 2}
    (report,) = (tmp_path / "profile").glob("worker-*.txt")
    text = report.read_text()
    samples = int(text.split()[0])
    assert samples > 0 and "by cumulative share" in text and "by self share" in text
    assert "evaluate.py" in text and "(evaluate)" in text  # the jobs' own frames were sampled
    lines = text.split("by innermost line under ")[1].splitlines()[1:]
    assert lines and all("fib_data" in line and re.search(r"\.py:\d+\(", line) for line in lines if line.strip())
