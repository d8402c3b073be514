"""Compile solutions in parallel before timing starts.

A first build costs 15-120 s (nvcc for CUDA sources, flashinfer's JIT on the first call, Triton's
compiler, inductor for torch.compile), and inside a device worker builds run one after another.
Here each solution that needs one is built and called once on its smallest workload, in spawn
processes, several at a time; the on-disk caches (torch extensions, ~/.cache/flashinfer, Triton's
and inductor's caches) then turn the worker's own build into a load. Nothing is recorded from
these calls: a failure here is met again, and recorded, by the real evaluation. Solution code
still runs only in child processes, never in the parent.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from typing import Mapping, Sequence


def needs_build(solution: Mapping) -> bool:
    deps = {d.lower() for d in solution.get("dependencies") or []}
    text = "\n".join(s["content"] for s in solution.get("sources") or [])
    return (solution.get("language") in ("cuda", "cpp", "triton") or "flashinfer" in deps
            or "torch.compile" in text)


def _size(job: Mapping) -> int:
    return math.prod(max(int(a["value"]), 1) for a in job["workload"]["axes"]) if job["workload"]["axes"] else 1


def plan(jobs: Sequence[Mapping]) -> list[Mapping]:
    """One job per solution that needs a build: the one with the smallest workload."""
    best: dict[str, Mapping] = {}
    for job in jobs:
        key = job["solution"]["content_hash"]
        if needs_build(job["solution"]) and (key not in best or _size(job) < _size(best[key])):
            best[key] = job
    return list(best.values())


def _warm(args: tuple) -> tuple[str, float, str | None]:
    job, device = args
    started = time.monotonic()
    try:
        import torch

        from .build import build_solution
        from .evaluate import _call_args
        from .inputs import make_inputs

        if device.startswith("cuda"):
            torch.cuda.set_device(device)
        fn = build_solution(job["solution"], device)
        values = list(make_inputs(job["definition"], job["workload"], job["blobs"], device, seed=0).values())
        args_, _ = _call_args(job, values, device)
        with torch.no_grad():
            fn(*args_)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        error = None
    except BaseException as exc:  # reported, never raised: the evaluation will meet it again
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    return job["solution"]["name"], time.monotonic() - started, error


def _child_init(jobs_per_build: int) -> None:
    # Each flashinfer/torch-extension build runs ninja with MAX_JOBS compilers, and inductor a pool
    # of as many compile processes; several builds at once share the cores instead of each asking
    # for all of them.
    os.environ["MAX_JOBS"] = str(jobs_per_build)
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", str(jobs_per_build))


def _marker(job: Mapping, stamp: str) -> Path:
    from .build import cache_root

    return cache_root() / "prebuilt" / f"{job['solution']['content_hash'][:24]}-{stamp[:16]}"


def prebuild(jobs: Sequence[Mapping], devices: Sequence[str], processes: int | None = None,
             timeout: float = 900.0, on_done=None, stamp: str | None = None) -> dict:
    """Build every solution of ``jobs`` that needs it, ``processes`` at a time, on ``devices``.

    With ``stamp`` (the environment's hash), a solution built once in that environment is not
    started again: its caches are on disk, and a process per solution costs seconds to start.
    """
    todo = [job for job in plan(jobs) if not (stamp and _marker(job, stamp).exists())]
    if not todo or not devices:
        return {"built": 0, "failed": [], "planned": 0, "wall_s": 0.0}
    cpus = os.cpu_count() or 2
    n = max(1, min(processes or min(8, cpus), len(todo)))
    started = time.monotonic()
    failed, built = [], 0
    ctx = mp.get_context("spawn")
    pool = ctx.Pool(n, initializer=_child_init, initargs=(max(2, cpus // n),), maxtasksperchild=1)
    by_name = {job["solution"]["name"]: job for job in todo}
    try:
        work = [(job, devices[i % len(devices)]) for i, job in enumerate(sorted(todo, key=lambda j: j["solution"]["name"]))]
        results = pool.imap_unordered(_warm, work)
        for _ in work:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                break
            try:
                name, seconds, error = results.next(timeout=left)
            except mp.TimeoutError:
                break
            built += error is None
            if error:
                failed.append({"solution": name, "error": error})
            elif stamp:
                marker = _marker(by_name[name], stamp)
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
            if on_done:
                on_done(name, seconds, error)
    finally:
        pool.terminate()  # a build that hangs past the budget must not hold up the run
        pool.join()
    return {"built": built, "failed": failed, "planned": len(todo), "processes": n,
            "wall_s": time.monotonic() - started}
