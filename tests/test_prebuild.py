"""Parallel pre-builds: which solutions get one, failures reported not raised, hangs cut off."""

import time

import pytest

from executor_data import HONEST_DPS, RMSNORM, build, solution

from fib_data.executor.bench import select_jobs
from fib_data.executor.prebuild import needs_build, plan, prebuild

BROKEN = "import torch\nraise RuntimeError('no such kernel library')\n"
HANGS = "import time\n\n\ndef run(x, weight, out):\n    time.sleep(600)\n"


def _sol(name, source, language="triton"):
    return solution(RMSNORM, name, source, True, language=language)


def test_plan_picks_built_languages_and_the_smallest_workload(tmp_path):
    plain = solution(RMSNORM, "plain", HONEST_DPS, True)
    compiled = _sol("compiled", HONEST_DPS)
    ds = build(tmp_path / "ds", [plain, compiled], batches=(16, 4, 64))
    jobs = select_jobs(ds)
    chosen = plan(jobs)
    assert [j["solution"]["name"] for j in chosen] == [compiled["name"]]
    assert chosen[0]["workload"]["axes"] == [{"name": "batch_size", "value": 4}]
    assert not needs_build(plain) and needs_build(compiled)
    assert needs_build({**plain, "dependencies": ["flashinfer"]})
    assert needs_build({**plain, "sources": [{"path": "m.py", "content": "f = torch.compile(g)"}]})


def test_prebuild_runs_each_in_a_child_and_reports_failures(tmp_path):
    good, bad = _sol("good", HONEST_DPS), _sol("bad", BROKEN)
    jobs = select_jobs(build(tmp_path / "ds", [good, bad]))
    seen = []
    result = prebuild(jobs, ["cpu"], processes=2, on_done=lambda n, s, e: seen.append((n, e)))
    assert result["planned"] == 2 and result["built"] == 1
    assert [f["solution"] for f in result["failed"]] == [bad["name"]]
    assert "no such kernel library" in result["failed"][0]["error"]
    assert sorted(n for n, _ in seen) == sorted([good["name"], bad["name"]])


def test_a_hanging_build_is_cut_off_by_the_budget(tmp_path):
    jobs = select_jobs(build(tmp_path / "ds", [_sol("hangs", HANGS)]))
    started = time.monotonic()
    result = prebuild(jobs, ["cpu"], processes=1, timeout=8.0)
    assert time.monotonic() - started < 40
    assert result["built"] == 0 and result["planned"] == 1


def test_a_deadline_stops_the_run_and_a_rerun_resumes(tmp_path):
    from executor_data import default_solutions

    from fib_data.executor.bench import BenchOptions, run_bench

    ds = build(tmp_path / "ds", default_solutions(), batches=(4, 8, 16))
    opts = BenchOptions(trials=1, reps=3, warmup_ms=0.0)
    first = run_bench(ds.root, devices=["cpu"], options=opts, deadline=time.monotonic() - 1)
    assert first["rows"] == [] and first["not_started"] == 7
    second = run_bench(ds.root, devices=["cpu"], options=opts)
    assert len(second["rows"]) == 7 and second["skipped_done"] == 0


CPP = r'''
#include <torch/extension.h>

void run(torch::Tensor x, torch::Tensor weight, torch::Tensor out) { out.copy_(x); }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("run", &run); }
'''


def _cxx_toolchain() -> bool:
    import shutil

    from torch.utils.cpp_extension import is_ninja_available

    return bool(shutil.which("c++")) and is_ninja_available()


def _build_in_child(row: dict) -> None:
    import multiprocessing as mp

    from fib_data.executor.build import build_solution

    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=build_solution, args=(row, "cpu"))
    proc.start()
    proc.join(300)
    assert proc.exitcode == 0


@pytest.mark.slow
def test_a_prebuilt_extension_is_loaded_not_rebuilt_by_the_worker(tmp_path, monkeypatch):
    if not _cxx_toolchain():
        pytest.skip("needs a C++ compiler and ninja")
    monkeypatch.setenv("FIB_EXTENSION_CACHE", str(tmp_path / "ext"))
    row = dict(solution(RMSNORM, "copy_cpp", "", True, language="cpp"), entry_point="main.cpp::run",
               sources=[{"path": "main.cpp", "content": CPP}])
    from fib_data.hashing import solution_hash

    row["content_hash"] = solution_hash(row)
    result = prebuild(select_jobs(build(tmp_path / "ds", [row])), ["cpu"], processes=1)
    assert result["built"] == 1, result
    (lib,) = (tmp_path / "ext").rglob("*.so")
    stamp = lib.stat().st_mtime_ns
    _build_in_child(row)  # another process, as the device worker is
    assert lib.stat().st_mtime_ns == stamp


def test_a_solution_built_in_this_environment_is_not_started_again(tmp_path, monkeypatch):
    monkeypatch.setenv("FIB_CACHE", str(tmp_path / "cache"))
    good, bad = _sol("good", HONEST_DPS), _sol("bad", BROKEN)
    jobs = select_jobs(build(tmp_path / "ds", [good, bad]))
    first = prebuild(jobs, ["cpu"], processes=2, stamp="env-a")
    assert first["planned"] == 2 and first["built"] == 1
    again = prebuild(jobs, ["cpu"], processes=2, stamp="env-a")
    assert again["planned"] == 1 and [f["solution"] for f in again["failed"]] == [bad["name"]]
    assert prebuild(jobs, ["cpu"], processes=2, stamp="env-b")["planned"] == 2  # new environment
