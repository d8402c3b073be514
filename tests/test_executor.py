"""The executor end to end: inputs, builds, verdicts, real workers, faults, resume after kill -9, Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

import executor_data as data
from fib_data.dataset import Dataset
from fib_data.executor import build_solution, load_reference, make_inputs
from fib_data.executor.bench import BenchOptions, run_bench
from fib_data.executor.build import BuildError
from fib_data.executor.correctness import output_stats, trial_status
from fib_data.executor.roofline import flops, tensor_bytes

FAST = dict(trials=2, reps=4, warmup_ms=1.0, timeout=10.0, build_timeout=0.0)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def ds(tmp_path) -> Dataset:
    return data.build(tmp_path / "ds")


def _gather_workload(ds):
    return next(w for w in ds.read("workloads").to_pylist() if w["definition"] == "scaled_gather_d32")


def test_inputs_are_seeded_fresh_and_prepared(ds):
    wl = _gather_workload(ds)
    a = make_inputs(data.GATHER, wl, ds.blobs, "cpu", seed=1)
    b = make_inputs(data.GATHER, wl, ds.blobs, "cpu", seed=1)
    c = make_inputs(data.GATHER, wl, ds.blobs, "cpu", seed=2)
    assert list(a) == ["table", "rows", "scale", "alpha"]
    assert torch.equal(a["table"], b["table"]) and not torch.equal(a["table"], c["table"])
    assert a["rows"].tolist() == [3, 0, 7, 7, 1]            # from the stored blob
    assert a["alpha"] == 2.0 and isinstance(a["alpha"], float)  # scalar from its JSON literal
    assert (a["scale"] >= 0.5).all()                          # the reference's prepare() ran
    assert a["table"].dtype == torch.float32 and a["table"].shape == (8, 32)
    shipped = {w["sha256"]: ds.blobs.get_bytes(w["sha256"]) for w in wl["inputs"] if w["sha256"]}
    assert torch.equal(make_inputs(data.GATHER, wl, shipped, "cpu", seed=1)["rows"], a["rows"])


def test_reference_normalizes_outputs(ds):
    wl = _gather_workload(ds)
    ref = load_reference(data.GATHER)
    picked, total = ref(*make_inputs(data.GATHER, wl, ds.blobs, "cpu", seed=0).values())
    assert picked.shape == (5, 32) and total.shape == (1,)


def test_build_imports_siblings_caches_and_reports_compile_errors():
    row = data.solution(data.RMSNORM, "two_files", "from .helper import run\n", False)
    row["sources"].append({"path": "helper.py", "content": data.HONEST_VALUE})
    from fib_data.hashing import solution_hash

    row["content_hash"] = solution_hash(row)
    fn = build_solution(row)
    assert build_solution(row) is fn
    x, w = torch.randn(2, 64, dtype=torch.bfloat16), torch.randn(64, dtype=torch.bfloat16)
    assert torch.equal(fn(x, w), load_reference(data.RMSNORM)(x, w)[0])
    broken = data.solution(data.RMSNORM, "broken", "def run(x, weight:\n", False)
    with pytest.raises(BuildError, match="SyntaxError"):
        build_solution(broken)
    with pytest.raises(BuildError, match="SyntaxError"):  # cached failure
        build_solution(broken)


def test_checks_run_in_order_shape_dtype_nonfinite_tolerance():
    ref = (torch.ones(2, 64, dtype=torch.bfloat16),)

    def status(out):
        return trial_status({"outputs": output_stats(data.RMSNORM, [out], ref)})[0]

    assert status(torch.ones(2, 64, dtype=torch.bfloat16)) == "PASSED"
    assert status(torch.ones(2, 64, dtype=torch.bfloat16) * 1.005) == "PASSED"      # within 1e-2
    assert status(torch.ones(3, 64, dtype=torch.bfloat16)) == "INCORRECT_SHAPE"
    assert status(torch.ones(2, 64, dtype=torch.float32)) == "INCORRECT_DTYPE"
    nan = torch.ones(2, 64, dtype=torch.bfloat16)
    nan[0, 0] = float("nan")
    assert status(nan) == "INCORRECT_NUMERICAL"
    assert status(torch.ones(2, 64, dtype=torch.bfloat16) * 1.05) == "INCORRECT_NUMERICAL"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_batched_comparison_matches_an_elementwise_oracle(dtype):
    import math

    from fib_data.executor.correctness import compare_rows

    atol, rtol = 1e-2, 1e-2
    special = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, 2.0, -3.0, 1e4]
    pairs = [(a, b) for a in special for b in special]
    near = [(1.0, 1.0 + 0.019), (1.0, 1.0 + 0.021), (-8.0, -8.0 - 0.08), (-8.0, -8.0 - 0.1), (0.0, 0.009),
            (0.0, 0.011), (300.0, 303.5), (300.0, 301.0), (1e-3, -1e-3)]  # (ref, out), clear of the boundary
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(2, 700, generator=g, dtype=torch.float64)
    rows = [(torch.tensor([b for _, b in pairs] + [o for _, o in near]), torch.tensor([a for a, _ in pairs] + [r for r, _ in near])),
            (noise[0] * 1.001, noise[0]), (noise[1] + 0.5, noise[0])]
    width = max(len(o) for o, _ in rows)
    outs = torch.stack([torch.nn.functional.pad(o, (0, width - len(o))) for o, _ in rows]).to(dtype)
    refs = torch.stack([torch.nn.functional.pad(r, (0, width - len(r))) for _, r in rows]).to(dtype)

    def oracle(out_row, ref_row):
        bad = nonfinite = ref_nonfinite = 0
        max_abs = max_rel = 0.0
        for o, r in zip(out_row.double().tolist(), ref_row.double().tolist()):
            finite = math.isfinite(o) and math.isfinite(r)
            if finite:
                err = abs(o - r)
                bad += err > atol + rtol * abs(r)
                max_abs, max_rel = max(max_abs, err), max(max_rel, err / max(abs(r), atol))
            else:
                bad += not (o == r or (math.isnan(o) and math.isnan(r)))
            nonfinite += (not math.isfinite(o)) and math.isfinite(r)
            ref_nonfinite += not math.isfinite(r)
        return [bad, nonfinite, ref_nonfinite, max_abs, max_rel]

    got = compare_rows(outs, refs, atol, rtol).tolist()
    for k, (o, r) in enumerate(zip(outs, refs)):
        want = oracle(o, r)
        assert got[k][:3] == want[:3], (k, got[k], want)
        assert got[k][3:] == pytest.approx(want[3:], rel=1e-6), (k, got[k], want)
    assert got[0][0] > 0 and got[1][0] == 0 and got[2][0] > 0  # the cases above cover both outcomes


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_quick_tolerance_check_passes_only_rows_the_full_comparison_passes(dtype):
    from fib_data.executor.correctness import compare_rows, output_stats_many, trial_status, within_tolerance_rows

    atol, rtol = 1e-2, 1e-2
    special = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, -3.0, 1e4, 1.019, 1.021, 0.009, 0.011]
    base = torch.linspace(-2, 2, 64, dtype=torch.float64)
    outs, refs = [], []
    for r in special:  # one element of the row set to (out, ref) = (o, r); the rest equal
        for o in special:
            out, ref = base.clone(), base.clone()
            out[7], ref[7] = o, (1.0 if r in (1.019, 1.021) else 0.0 if r in (0.009, 0.011) else r)
            outs.append(out)
            refs.append(ref)
    outs, refs = torch.stack(outs).to(dtype), torch.stack(refs).to(dtype)
    quick = within_tolerance_rows(outs, refs, atol, rtol).tolist()
    full = compare_rows(outs, refs, atol, rtol).tolist()
    for k, (ok, (bad, nonfinite, ref_nonfinite, *_)) in enumerate(zip(quick, full)):
        finite = bool(torch.isfinite(outs[k]).all() and torch.isfinite(refs[k]).all())
        if ok:
            assert bad == nonfinite == ref_nonfinite == 0, k
        if finite:  # where everything is finite the quick check is exact
            assert ok == (bad == 0), (k, outs[k, 7].item(), refs[k, 7].item())
    assert any(quick) and not all(quick)

    # Whole statuses are the same either way, including rows the quick check sends on.
    definition = {"outputs": [{"name": "y", "dtype": str(dtype).removeprefix("torch.")}],
                  "tolerances": [{"dtype": str(dtype).removeprefix("torch."), "atol": atol, "rtol": rtol}]}
    calls = [([o], [r], []) for o, r in zip(outs, refs)]
    for ratio in (1.0, 0.9):
        fast = [trial_status({"outputs": s}, ratio) for s in output_stats_many(definition, calls, errors=False)]
        slow = [trial_status({"outputs": s}, ratio) for s in output_stats_many(definition, calls)]
        assert fast == slow


def test_input_checksums_see_any_changed_word_and_leave_the_inputs_alone():
    import numpy as np

    from fib_data.executor.correctness import bits, changed_sets, fingerprint, fingerprint_many

    g = torch.Generator().manual_seed(0)
    values = [torch.randn(3000, generator=g).to(torch.bfloat16), torch.randn(5 << 20, generator=g),
              torch.randint(-2**62, 2**62, (9,), generator=g), torch.rand(11, generator=g) > 0.5,
              torch.randn(40, generator=g).to(torch.float8_e4m3fn), torch.randn(5, 3, generator=g).t(), 7]
    pristine = [v.clone() if isinstance(v, torch.Tensor) else v for v in values]
    got = fingerprint(values)
    for v, p in zip(values, pristine):
        assert not isinstance(v, torch.Tensor) or torch.equal(bits(v), bits(p))

    def expected(t):  # the definition, from the raw bytes: widest words that divide the size
        raw = bits(t).contiguous().numpy().tobytes()
        word = next(w for w in (8, 4, 2, 1) if len(raw) % w == 0)
        ints = np.frombuffer(raw, dtype=f"<i{word}").astype(np.int64)
        return [int(ints[0::2].sum()), int(ints[1::2].sum())]

    assert got.tolist() == [expected(v) for v in values[:6]]
    assert fingerprint_many([values, pristine])[1].tolist() == got.tolist()
    one_bit, swapped = ([v.clone() if isinstance(v, torch.Tensor) else v for v in values] for _ in range(2))
    one_bit[0][17] = -one_bit[0][17]
    swapped[1][[0, 2]] = swapped[1][[2, 0]]  # halves of words 0 and 1 trade places: same total
    assert changed_sets([(got, fingerprint(pristine)), (got, fingerprint(one_bit)),
                         (got, fingerprint(swapped))]) == [False, True, True]


def test_roofline_sizes():
    axes = {"batch_size": 4, "hidden_size": 64}
    assert tensor_bytes(data.RMSNORM, axes) == (4 * 64 * 2) * 2 + 64 * 2
    assert flops(data.RMSNORM, axes) == 4 * 4 * 64


def test_verdict_flags_implausible_speedups_and_work_outside_the_timed_stream():
    from fib_data.executor.bench import BenchOptions as Opts
    from fib_data.executor.verdict import evaluation_row

    options = Opts(reps=4).resolved(gpu=True)
    trial = {"outputs": output_stats(data.RMSNORM, [torch.ones(2, 64, dtype=torch.bfloat16)],
                                     [torch.ones(2, 64, dtype=torch.bfloat16)])}
    env = {"hardware": "NVIDIA H100 80GB HBM3", "torch": "x", "other_libs": []}
    job = {"definition": data.RMSNORM, "workload": data.workload(data.RMSNORM, "w", {"batch_size": 2}),
           "solution": data.solution(data.RMSNORM, "s", data.HONEST_VALUE, False)}
    ref = {"timer": "cuda_event", "samples_ms": [1.0] * 4, "wide_ms": [1.01] * 4, "sync_overhead_ms": [0.01]}
    fast = {"timer": "cuda_event", "samples_ms": [0.05] * 4, "wide_ms": [0.06] * 4, "sync_overhead_ms": [0.01],
            "input_sets": 4, "verified_calls": 4, "mismatched_calls": 0}
    row = evaluation_row(job, {"trials": [trial], "timing": fast, "reference_timing": ref, "environment": env},
                         "r", "cuda:0", options)
    assert row["status"] == "PASSED" and row["speedup_factor"] == pytest.approx(20.0)
    assert "implausible_speedup" in row["flags"] and "wall_clock_gap" not in row["flags"]
    assert row["bandwidth_fraction"] == pytest.approx(row["achieved_gbps"] / 3350.0)
    hidden = dict(fast, wide_ms=[0.51] * 4)  # the device-wide marker saw 0.45 ms more work
    row = evaluation_row(job, {"trials": [trial], "timing": hidden, "reference_timing": ref, "environment": env},
                         "r", "cuda:0", options)
    assert "wall_clock_gap" in row["flags"] and row["latency_ms"] == pytest.approx(0.5)
    # A busy host wakes from the sync late for both sides of the evaluation alike (seen on the
    # H100 right after inductor compiles): not hidden work, and the stream's figure stands.
    slow_host = dict(ref, wide_ms=[1.045] * 4)
    late = dict(fast, wide_ms=[0.095] * 4)
    row = evaluation_row(job, {"trials": [trial], "timing": late, "reference_timing": slow_host,
                               "environment": env}, "r", "cuda:0", options)
    assert "wall_clock_gap" not in row["flags"] and row["latency_ms"] == pytest.approx(0.05)
    assert row["reference_latency_ms"] == pytest.approx(1.0)
    row = evaluation_row(job, {"trials": [trial], "timing": late, "reference_timing": ref,
                               "environment": env}, "r", "cuda:0", options)
    assert "wall_clock_gap" in row["flags"]  # the same tail with a prompt reference is a gap
    hidden_on_slow_host = dict(fast, wide_ms=[0.545] * 4)
    row = evaluation_row(job, {"trials": [trial], "timing": hidden_on_slow_host, "reference_timing": slow_host,
                               "environment": env}, "r", "cuda:0", options)
    assert "wall_clock_gap" in row["flags"] and row["latency_ms"] == pytest.approx(0.5, abs=0.01)


def test_calls_the_spin_did_not_cover_are_left_out_of_the_median():
    from fib_data.executor.verdict import latency

    # Two calls took longer to enqueue than the spin lasted: their intervals hold launch latency.
    timed = {"samples_ms": [0.10, 0.11, 0.10, 0.30, 0.32], "wide_ms": [0.11, 0.12, 0.11, 0.31, 0.33],
             "sync_overhead_ms": [0.01], "held": [True, True, True, False, False], "hold": "spin"}
    found = latency(timed)
    assert found["median"] == pytest.approx(0.10) and found["unheld"] == 2
    # Without a majority of held calls nothing is dropped (the figure then includes launch time).
    mostly_unheld = dict(timed, held=[True, False, False, False, False])
    assert latency(mostly_unheld)["median"] == pytest.approx(0.11)
    assert latency(mostly_unheld)["host_bound"] and not found["host_bound"]


def test_calls_a_solution_let_go_past_the_latch_still_count():
    """Under the latch a call goes unheld only when the solution syncs or stalls past its limit:
    a solution must not be able to choose which of its calls are measured."""
    from fib_data.executor.verdict import latency

    timed = {"samples_ms": [0.10, 0.11, 0.10, 0.30, 0.32], "wide_ms": [0.11, 0.12, 0.11, 0.31, 0.33],
             "sync_overhead_ms": [0.01], "held": [True, True, True, False, False], "hold": "latch"}
    found = latency(timed)
    assert found["median"] == pytest.approx(0.11) and found["unheld"] == 2 and not found["host_bound"]


def test_rows_whose_calls_were_mostly_unheld_are_flagged_host_bound():
    import torch

    from fib_data.executor.bench import BenchOptions as Opts
    from fib_data.executor.correctness import output_stats
    from fib_data.executor.verdict import evaluation_row

    trial = {"outputs": output_stats(data.RMSNORM, [torch.ones(2, 64, dtype=torch.bfloat16)],
                                     [torch.ones(2, 64, dtype=torch.bfloat16)])}
    job = {"definition": data.RMSNORM, "workload": data.workload(data.RMSNORM, "w", {"batch_size": 2}),
           "solution": data.solution(data.RMSNORM, "s", data.HONEST_VALUE, False)}
    timed = {"timer": "cuda_event", "samples_ms": [2.0] * 4, "wide_ms": [2.01] * 4, "sync_overhead_ms": [0.01],
             "input_sets": 4, "verified_calls": 4, "mismatched_calls": 0, "held": [False, False, False, True]}
    ref = dict(timed, held=[True] * 4)
    raw = {"trials": [trial], "timing": timed, "reference_timing": ref,
           "environment": {"hardware": "NVIDIA H100 80GB HBM3", "torch": "x", "other_libs": []}}
    row = evaluation_row(job, raw, "r", "cuda:0", Opts(reps=4).resolved(gpu=True))
    assert "host_bound" in row["flags"] and "reference_host_bound" not in row["flags"]
    row = evaluation_row(job, dict(raw, timing=ref), "r", "cuda:0", Opts(reps=4).resolved(gpu=True))
    assert "host_bound" not in row["flags"]


STRUCTURE_PROBE = '''import os
import torch


def run(table, rows, scale, alpha):
    with open(os.environ["FIB_TEST_PROBE"], "a") as f:
        f.write(f"{rows.data_ptr()} {table.data_ptr()}\\n")
    return torch.index_select(table, 0, rows.long()) * (scale * alpha)[:, None], scale.sum().reshape(1)
'''


def test_timed_sets_share_integer_inputs_and_rotate_floats(tmp_path, monkeypatch):
    """As across the layers of one serving step: a per-batch plan need not be redone per call."""
    probe = tmp_path / "calls.txt"
    monkeypatch.setenv("FIB_TEST_PROBE", str(probe))
    ds = data.build(tmp_path / "ds", [data.solution(data.GATHER, "probe", STRUCTURE_PROBE, False)])
    result = run_bench(ds.root, devices=["cpu"], options=BenchOptions(trials=2, reps=8, min_reps=8, warmup_ms=0.0,
                                                                       timeout=30.0, build_timeout=0.0))
    assert result["statuses"] == {"PASSED": 1}
    calls = [line.split() for line in probe.read_text().splitlines()]  # trials, warm-up, then 8 timed
    assert len({t for _, t in calls[-8:]}) == 8, "the float input must rotate over distinct sets"
    assert len({r for r, _ in calls[-8:]}) == 1, "the integer input must be one tensor for all timed sets"


def test_timed_calls_are_capped_where_their_kept_outputs_would_not_fit():
    import torch

    from fib_data.executor import evaluate as ev
    from fib_data.executor.integrity import Snapshot

    opts = {"reps": 50, "min_reps": 10}
    job = {"options": opts}
    pool = ev.Pool(make=None, capacity=2, ref_outputs=[(torch.empty(1000, dtype=torch.uint8),)])
    gpu = ev.WorkerState(device="cuda:0", snapshot=Snapshot(), total_memory=40_000 / ev.KEPT_OUTPUTS_SHARE)
    assert ev._reps_for_kept_outputs(gpu, job, pool) == 40  # 40 outputs of 1000 bytes fit
    gpu.total_memory = 4_000 / ev.KEPT_OUTPUTS_SHARE
    assert ev._reps_for_kept_outputs(gpu, job, pool) == 10  # never below min_reps
    gpu.total_memory = 10 ** 12
    assert ev._reps_for_kept_outputs(gpu, job, pool) == 50
    assert ev._reps_for_kept_outputs(gpu, {"options": {"reps": 5}}, pool) == 5  # nor above reps
    cpu = ev.WorkerState(device="cpu", snapshot=Snapshot())
    assert ev._reps_for_kept_outputs(cpu, job, pool) == 50


def test_prebuilds_end_by_the_runs_deadline():
    from fib_data.executor.bench import build_budget

    assert build_budget(420.0, None) == 420.0
    assert build_budget(420.0, 130.0, now=lambda: 100.0) == 30.0  # the deadline comes first
    assert build_budget(20.0, 130.0, now=lambda: 100.0) == 20.0
    assert build_budget(420.0, 90.0, now=lambda: 100.0) <= 0  # past it: no pre-build at all


def test_bench_writes_one_part_file_with_full_rows(ds):
    result = run_bench(ds.root, devices=["cpu"], options=BenchOptions(**FAST))
    assert result["statuses"] == {"PASSED": 5}
    files = [f for f in ds.files("evaluations") if f.name.startswith("run-")]
    assert [f.name for f in files] == [f"run-{result['run_id']}.parquet"]
    rows = pq.read_table(files[0]).to_pylist()
    assert len(rows) == 5
    for row in rows:
        assert row["timing"]["timer"] == "wall_clock" and row["timing"]["trials"] == 2
        assert row["timing"]["input_sets"] >= 2 and row["latency_ms"] > 0
        assert row["speedup_factor"] == pytest.approx(row["reference_latency_ms"] / row["latency_ms"])
        assert row["environment"]["hardware"].startswith("cpu") and row["environment"]["torch"]
        assert row["achieved_gbps"] > 0 and row["max_absolute_error"] is not None
    manifest = json.loads((ds.root / "runs" / result["run_id"] / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["evaluations"] == 5
    assert "salt" not in manifest["options"]
    assert not list((ds.root / "runs" / result["run_id"]).glob("batch-*"))
    again = run_bench(ds.root, devices=["cpu"], options=BenchOptions(**FAST))
    assert again["skipped_done"] == 5 and again["rows"] == []


def test_crash_and_hang_cost_only_their_own_evaluations(tmp_path):
    crash = data.cheat(data.CHEATS / "segfault.py")[0]
    hang = data.cheat(data.CHEATS / "hang.py")[0]
    honest = data.solution(data.RMSNORM, "zz_honest", data.HONEST_DPS, True)
    ds = data.build(tmp_path / "ds", [crash, hang, honest], batches=(4, 8))
    result = run_bench(ds.root, devices=["cpu"], options=BenchOptions(**FAST | {"timeout": 6.0}))
    by = {}
    for row in result["rows"]:
        by.setdefault(row["solution"], []).append(row)
    assert [r["status"] for r in by["cheat_segfault"]] == ["RUNTIME_ERROR"] * 2
    assert "killed by signal 11" in by["cheat_segfault"][0]["log"]
    hangs = sorted(by["cheat_hang"], key=lambda r: r["flags"])
    assert [r["status"] for r in hangs] == ["TIMEOUT", "TIMEOUT"]
    assert "skipped_after_timeout" in hangs[0]["flags"] + hangs[1]["flags"]  # one ran, one skipped
    assert [r["status"] for r in by["zz_honest"]] == ["PASSED", "PASSED"]
    assert all(r["reference_latency_ms"] for r in by["zz_honest"])


SLOW_SOLUTION = data.HONEST_DPS.replace("def run(x, weight, out):\n",
                                        "def run(x, weight, out):\n    import time; time.sleep(0.03)\n")


def test_kill_dash_9_loses_nothing_and_rerun_never_duplicates(tmp_path):
    sols = [data.solution(data.RMSNORM, f"slow_{i}", SLOW_SOLUTION + f"# {i}\n", True) for i in range(6)]
    ds = data.build(tmp_path / "ds", sols, batches=(2, 3, 4))
    cmd = [sys.executable, "-m", "fib_data", "bench", str(ds.root), "--devices", "cpu", "--trials", "1",
           "--reps", "2", "--warmup-ms", "1", "--timeout", "30"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 90
    found: list[Path] = []
    while time.time() < deadline and len(found) < 3:
        found = list((ds.root / "runs").glob("*/batch-*.parquet")) if (ds.root / "runs").exists() else []
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run, workers included
    proc.wait()
    assert len(found) >= 3, "the run never wrote a batch"
    before = {(r["solution_hash"], r["workload_uuid"]): r["timestamp"]
              for f in (ds.root / "runs").glob("*/batch-*.parquet") for r in pq.read_table(f).to_pylist()}
    assert 3 <= len(before) < 18
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=300)
    rows = Dataset(ds.root).read("evaluations").to_pylist()
    keys = [(r["solution_hash"], r["workload_uuid"], r["environment_hash"]) for r in rows]
    assert len(keys) == len(set(keys)) == 18
    after = {(r["solution_hash"], r["workload_uuid"]): r["timestamp"] for r in rows}
    assert all(after[k] == t for k, t in before.items())  # finished rows kept, not re-run
    assert not list((ds.root / "runs").glob("*/batch-*.parquet"))


@pytest.mark.slow
def test_ray_backend_on_a_local_cpu_cluster(ds):
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_bench(ds.root, devices=["cpu", "cpu"], backend="ray", options=BenchOptions(**FAST))
    finally:
        ray.shutdown()
    assert result["statuses"] == {"PASSED": 5}
    assert (ds.root / "data" / "evaluations" / f"run-{result['run_id']}.parquet").exists()


@pytest.mark.gpu
def test_gpu_timing_modes(ds):
    # The test solutions target "cpu"; all_hardware runs them on the GPU as well.
    events = run_bench(ds.root, devices=["cuda:0"], options=BenchOptions(trials=2, reps=20), all_hardware=True)
    assert events["statuses"] == {"PASSED": 5}
    for row in events["rows"]:
        assert row["timing"]["timer"] == "cuda_event" and row["timing"]["l2_flush"]
        assert "wall_clock_gap" not in row["flags"]
    graph = run_bench(data.build(ds.root.parent / "ds2").root, devices=["cuda:0"], all_hardware=True,
                      options=BenchOptions(trials=2, reps=20, cuda_graph=True))
    assert {r["timing"]["timer"] for r in graph["rows"]} == {"cuda_graph"}


def test_two_local_workers_start_together_and_share_the_jobs(ds):
    import json

    result = run_bench(ds.root, devices=["cpu", "cpu"], options=BenchOptions(**FAST))
    assert result["statuses"] == {"PASSED": 5}
    manifest = json.loads((ds.root / "runs" / result["run_id"] / "manifest.json").read_text())
    assert manifest["devices"] == ["cpu#0", "cpu#1"] and len(manifest["environments"]) == 2


def test_workers_import_only_the_kernel_libraries_the_solutions_use():
    from fib_data.executor.worker import modules_needed

    def job(**sol):
        return {"solution": {"dependencies": [], "language": "python", "sources": [], **sol}}

    assert modules_needed([job()]) == ()
    assert modules_needed([job(language="triton")]) == ("triton",)
    assert modules_needed([job(dependencies=["flashinfer"]), job()]) == ("flashinfer",)
    compiled = job(sources=[{"path": "m.py", "content": "run = torch.compile(f)"}])
    assert modules_needed([compiled]) == ("triton",)


def test_trial_references_run_once_per_workload_not_per_solution(tmp_path, monkeypatch):
    import copy

    counter = tmp_path / "reference_calls"
    monkeypatch.setenv("FIB_TEST_REFERENCE_LOG", str(counter))  # the spawn worker inherits it
    counting = copy.deepcopy(data.RMSNORM)
    counting["reference"] = data.RMSNORM_REFERENCE.replace(
        "def run(x, weight):",
        "def run(x, weight):\n    import os\n"
        "    with open(os.environ['FIB_TEST_REFERENCE_LOG'], 'a') as f:\n        f.write('x')")
    sols = [data.solution(counting, n, data.HONEST_DPS, True) for n in ("a", "b", "c")]
    ds = data.build(tmp_path / "ds", sols, batches=(4,))
    ds.replace("definitions", [counting, data.GATHER])
    result = run_bench(ds.root, definitions=["rmsnorm_h64"], devices=["cpu"],
                       options=BenchOptions(trials=2, reps=0, timeout=30.0))
    assert result["statuses"] == {"PASSED": 3}
    assert counter.read_text() == "xx"  # 2 trials x 1 workload, shared by the 3 solutions
