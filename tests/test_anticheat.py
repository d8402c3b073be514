"""Every cheat in tests/cheats/ is caught, through real spawn workers, on CPU (and GPU-only ones on GPU)."""

from __future__ import annotations

import pytest

import executor_data as data
from fib_data.executor.bench import BenchOptions, run_bench
from fib_data.executor.verdict import evaluation_row
from fib_data.executor.worker import WorkerHandle

CHEAT_FILES = sorted(p for p in data.CHEATS.glob("*.py"))
# Short budgets: tiny shapes, 6 timed calls over 2 rotating input sets (so repeats happen).
FAST = dict(trials=3, reps=6, warmup_ms=1.0, pool_bytes=600, timeout=10.0, build_timeout=0.0)


@pytest.fixture(scope="module")
def cheat_run(tmp_path_factory):
    cheats = [data.cheat(p) for p in CHEAT_FILES]
    honest = [data.solution(data.RMSNORM, "zz_honest_dps", data.HONEST_DPS, True),
              data.solution(data.RMSNORM, "zz_honest_value", data.HONEST_VALUE, False)]
    ds = data.build(tmp_path_factory.mktemp("cheats") / "ds", [c for c, _ in cheats] + honest, batches=(4,))
    result = run_bench(ds.root, definitions=["rmsnorm_h64"], devices=["cpu"], options=BenchOptions(**FAST))
    rows = {r["solution"]: r for r in result["rows"]}
    return rows, {c["name"]: e for c, e in cheats}


def test_suite_is_big_enough():
    assert len(CHEAT_FILES) >= 8


@pytest.mark.parametrize("path", CHEAT_FILES, ids=lambda p: p.stem)
def test_cheat_is_caught(cheat_run, path):
    rows, expectations = cheat_run
    name = f"cheat_{path.stem}"
    row, expect = rows[name], expectations[name]
    if "status" not in expect:
        pytest.skip("caught only on a GPU (see the gpu test)")
    assert row["status"] == expect["status"], (row["status"], row["flags"], row["log"])
    assert row["status"] != "PASSED"
    if "flag" in expect:
        assert expect["flag"] in row["flags"], (row["flags"], row["log"])
    assert row["latency_ms"] is None and row["speedup_factor"] is None


def test_honest_solutions_after_cheats_are_measured_cleanly(cheat_run):
    rows, _ = cheat_run
    for name in ("zz_honest_dps", "zz_honest_value"):
        row = rows[name]
        assert row["status"] == "PASSED", row["log"]
        assert not {"tampered", "worker_replaced", "implausible_speedup"} & set(row["flags"])
        assert row["latency_ms"] > 1e-3 and row["speedup_factor"] < 10


def test_patched_timers_do_not_leak_into_the_next_solution_in_the_same_worker(tmp_path):
    """No replacement here: the same worker evaluates the timer-patching cheat, then an honest one."""
    ds = data.build(tmp_path / "ds", batches=(4,))
    definition = ds.read("definitions").to_pylist()[0]
    workload = next(w for w in ds.read("workloads").to_pylist() if w["definition"] == definition["name"])
    cheat, _ = data.cheat(data.CHEATS / "patch_timers.py")
    honest = data.solution(data.RMSNORM, "honest", data.HONEST_VALUE, False)
    options = BenchOptions(**FAST).resolved(gpu=False)
    handle = WorkerHandle("cpu")
    handle.start()
    try:
        raws = []
        for sol in (cheat, honest):
            job = {"definition": definition, "workload": workload, "solution": sol, "blobs": {},
                   "options": options}
            raw = handle.evaluate(job, timeout=60)
            raw["environment"] = handle.environment
            raws.append((job, raw))
    finally:
        handle.stop()
    (cheat_job, cheat_raw), (_, honest_raw) = raws
    cheat_row = evaluation_row(cheat_job, cheat_raw, "t", "cpu", options)
    assert cheat_row["status"] == "RUNTIME_ERROR" and "tampered" in cheat_row["flags"]
    # The patched clock ticks 1 ns per call: samples from it would be ~1e-6 ms. The clocks bound
    # before any solution loaded keep measuring real time, for the cheat and the next solution.
    for raw in (cheat_raw, honest_raw):
        samples = sorted(raw["timing"]["samples_ms"])
        assert samples[len(samples) // 2] > 1e-3
    ratio = sorted(honest_raw["reference_timing"]["samples_ms"])[3] / sorted(honest_raw["timing"]["samples_ms"])[3]
    assert 0.05 < ratio < 20


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["side_stream", "side_stream_unordered"])
def test_side_stream_work_is_caught_on_gpu(tmp_path, name):
    cheat, expect = data.cheat(data.CHEATS / f"{name}.py")
    honest = data.solution(data.RMSNORM, "honest", data.HONEST_VALUE, False)
    ds = data.build(tmp_path / "ds", [cheat, honest], batches=(1 << 20,))  # ~0.5 ms of GPU work
    result = run_bench(ds.root, definitions=["rmsnorm_h64"], devices=["cuda:0"], all_hardware=True,
                       options=BenchOptions(trials=2, reps=20, warmup_ms=5.0, timeout=120.0))
    rows = {r["solution"]: r for r in result["rows"]}
    assert expect["gpu-flag"] in rows[cheat["name"]]["flags"]
    assert "wall_clock_gap" not in rows["honest"]["flags"]
    # The stream's own events saw almost nothing; the recorded latency counts the hidden work.
    import json

    stream_only = json.loads(rows[cheat["name"]]["correctness_extra"])["stream_latency_ms"]
    assert stream_only < 0.5 * rows["honest"]["latency_ms"]
    assert rows[cheat["name"]]["latency_ms"] > 0.8 * rows["honest"]["latency_ms"]
