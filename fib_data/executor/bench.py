"""``fib bench``: select jobs from a dataset, run them on device agents, store evaluation rows."""

from __future__ import annotations

import os
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..dataset import Dataset
from ..hashing import environment_hash
from . import store
from .verdict import evaluation_row


@dataclass
class BenchOptions:
    trials: int = 3
    reps: int | None = None          # most timed calls; default 50 on GPU, 10 on CPU
    min_reps: int = 10               # fewest timed calls before the CI rule may stop the loop
    ci_width: float = 0.02           # stop once the median's 95% CI is this narrow (relative); 0: fixed reps
    # Warm-up budget per timed function (at least 3 calls), default 1 ms: the correctness trials
    # have already paid first-call costs (lazy init, autotuning, allocator growth) and the worker
    # keeps the device busy, so clocks are up. On H100s, 5 ms instead moved the per-pair medians by
    # 0.7-2.9% (median over 220 pairs), a rerun at 1 ms by 0.8-2.1%, in no consistent direction
    # (benchmarks/gpu/vs_peer.py --ab-warmup 5; benchmarks/results/2026-11-23-session4).
    warmup_ms: float | None = None
    cuda_graph: bool = False
    l2_flush: bool = True
    hold: bool = True                # GPU latch (or spin) before the start event hides host launch latency
    prebuild: int | None = None      # parallel build processes before timing; None: auto, 0: off
    seed: int = 0
    timeout: float = 300.0
    build_timeout: float = 600.0
    required_matched_ratio: float = 1.0
    pool_bytes: int = 1 << 30        # memory for distinct timing input sets per workload
    salt: str = field(default_factory=lambda: secrets.token_hex(8))

    def resolved(self, gpu: bool) -> dict:
        out = asdict(self)
        out["reps"] = self.reps if self.reps is not None else (50 if gpu else 10)
        out["warmup_ms"] = self.warmup_ms if self.warmup_ms is not None else 1.0
        return out

    def public(self, gpu: bool) -> dict:
        return {k: v for k, v in self.resolved(gpu).items() if k != "salt"}


def parse_devices(spec: str) -> list[str]:
    """'cuda:0,cuda:1', 'cpu', 'cpu,cpu' (two CPU workers), 'cuda' or 'auto' (every GPU, else cpu)."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if items in (["auto"], ["cuda"]):
        n = gpu_count()
        return [f"cuda:{i}" for i in range(n)] if n else ["cpu"]
    return items


def gpu_count(driver_dir: str = "/proc/driver/nvidia/gpus") -> int:
    """The GPUs CUDA will show, without importing torch in the parent (seconds; only workers
    need it): the NVIDIA driver's devices, narrowed by CUDA_VISIBLE_DEVICES as CUDA reads it
    (entries up to the first negative one). A Linux machine with neither that list nor a WSL or
    ROCm device node has no GPU torch could use; elsewhere torch counts."""
    folder = Path(driver_dir)
    if not folder.is_dir():
        if sys.platform.startswith("linux") and not any(Path(d).exists() for d in ("/dev/dxg", "/dev/kfd")):
            return 0
        import torch

        return torch.cuda.device_count()
    found = sum(1 for _ in folder.iterdir())
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return found
    entries = []
    for item in (v.strip() for v in visible.split(",")):
        if not item or item.startswith("-"):
            break
        entries.append(item)
    return min(len(entries), found)


def _match(value: str, wanted: Sequence[str] | None) -> bool:
    return not wanted or value in wanted


def runs_on(solution: dict, devices: Sequence[str]) -> bool:
    """Whether a solution targets one of the devices' kinds (cpu, cuda).

    Triton kernels target GPUs; on a CPU they run only under the interpreter (TRITON_INTERPRET=1),
    orders of magnitude slower, so they are benchmarked there only with ``all_hardware``.
    """
    kinds = {d.split(":")[0] for d in devices}
    targets = {t.lower() for t in solution["target_hardware"] or []}
    return bool(kinds & targets) or ("cuda" in kinds and bool(targets - {"cpu"}))


def select_jobs(ds: Dataset, definitions=None, solutions=None, workloads=None,
                devices: Sequence[str] | None = None) -> list[dict]:
    """(definition, workload, solution) jobs; with ``devices``, only solutions that target them."""
    defs = {d["name"]: d for d in ds.read("definitions").to_pylist() if _match(d["name"], definitions)}
    sols = [s for s in ds.read("solutions").to_pylist()
            if s["definition"] in defs and _match(s["name"], solutions)
            and (devices is None or runs_on(s, devices))]
    wls = [w for w in ds.read("workloads").to_pylist()
           if w["definition"] in defs and _match(w["uuid"], workloads)]
    blobs: dict[str, bytes] = {}
    jobs = []
    for w in wls:
        shas = {i["sha256"] for i in w["inputs"] if i["type"] == "safetensors"}
        for sha in shas - blobs.keys():
            blobs[sha] = ds.blobs.get_bytes(sha)
        for s in sols:
            if s["definition"] == w["definition"]:
                jobs.append({"definition": defs[w["definition"]], "workload": w, "solution": s,
                             "blobs": {sha: blobs[sha] for sha in shas}})
    return jobs


def make_agents(devices: list[str], backend: str, address: str | None):
    if backend == "ray":
        from .ray_backend import ray_agents

        return ray_agents(address, devices)
    from .scheduler import LocalAgent

    return [LocalAgent(f"{d}#{i}" if devices.count(d) > 1 else d, d) for i, d in enumerate(devices)]


def _start_all(agents, preload: tuple[str, ...]) -> list[dict]:
    """Start every agent at once: each worker spends seconds importing torch and opening a CUDA
    context, and eight of them one after another would cost a minute."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(len(agents), 1)) as pool:
        return list(pool.map(lambda a: a.start(preload), agents))


def _prebuild(todo: list[dict], agents, backend: str, options: BenchOptions, on_done=None,
              deadline: float | None = None) -> dict | None:
    gpus = [a for a in agents if a.device.startswith("cuda")]
    budget = build_budget(options.build_timeout, deadline)
    if backend != "local" or not gpus or options.prebuild == 0 or budget <= 0:
        return None
    from .prebuild import prebuild

    return prebuild(todo, sorted({a.device for a in gpus}), options.prebuild, timeout=budget,
                    on_done=on_done, stamp=environment_hash(gpus[0].environment))


def build_budget(build_timeout: float, deadline: float | None, now: Callable[[], float] | None = None) -> float:
    """Seconds the parallel pre-builds may take: ``build_timeout``, and no later than the run's
    deadline (pre-builds are jobs too; a solution left unbuilt is built by its worker, if its
    evaluation still starts)."""
    if deadline is None:
        return build_timeout
    return min(build_timeout, deadline - (now or time.monotonic)())


def run_bench(root: str | Path, *, definitions=None, solutions=None, workloads=None,
              devices: Sequence[str] = ("cpu",), backend: str = "local", address: str | None = None,
              options: BenchOptions | None = None, all_hardware: bool = False,
              on_start: Callable[[int, int], None] | None = None,
              on_row: Callable[[dict], None] | None = None, deadline: float | None = None,
              on_prebuilt: Callable[[str, float, str | None], None] | None = None) -> dict:
    """Evaluate the selected (solution, workload) pairs not evaluated yet in this environment.

    ``deadline`` (a ``time.monotonic()`` value): the parallel pre-builds end by it and no job
    starts after it; the rest are left for a rerun, which resumes.
    """
    from .scheduler import Scheduler

    ds = Dataset(root)
    options = options or BenchOptions()
    agents = make_agents(list(devices), backend, address)
    try:
        for agent in agents:  # workers import torch (seconds) while this process reads the dataset
            getattr(agent, "launch", lambda: None)()
        recovered = store.recover(ds)
        jobs = select_jobs(ds, definitions, solutions, workloads,
                           devices=None if all_hardware else devices)
        done = store.done_keys(ds)
        from .worker import modules_needed

        # A worker imports flashinfer (seconds) only if some selected solution uses it.
        infos = _start_all(agents, modules_needed(jobs))
        for agent, info in zip(agents, infos):
            agent.environment = info["environment"]
        env_hashes = {environment_hash(i["environment"]) for i in infos}
        todo = [j for j in jobs if not any((j["solution"]["content_hash"], j["workload"]["uuid"], h) in done
                                           for h in env_hashes)]
        gpu = any(a.device.startswith("cuda") for a in agents)
        resolved = options.resolved(gpu)
        for job in todo:
            job["options"] = resolved
        built = _prebuild(todo, agents, backend, options, on_prebuilt, deadline)
        run = store.RunStore(ds, store.new_run_id())
        run.start(backend=backend, devices=[a.name for a in agents], options=options.public(gpu),
                  selected=len(jobs), to_run=len(todo), recovered_runs=recovered,
                  environments=[i["environment"] for i in infos], prebuild=built,
                  worker_start_s=[i.get("start_s") for i in infos])
        if on_start:
            on_start(len(jobs), len(todo))
        rows: list[dict] = []

        def written(row):  # called by the writer thread once the row is on disk
            rows.append(row)
            if on_row:
                on_row(row)

        writer = run.open_writer(written)

        def record(job, raw, agent):
            writer.put(evaluation_row(job, raw, run.run_id, agent.device, resolved))

        scheduler = Scheduler(agents, options.timeout, options.build_timeout, record, deadline=deadline)
        switch = sys.getswitchinterval()
        # A result that arrives while the writer thread holds the GIL (converting rows) would wait
        # up to the switch interval (5 ms) before the next job goes out: the GPU idles meanwhile.
        sys.setswitchinterval(min(switch, 0.0002))
        try:
            scheduler.run(todo)
        finally:
            sys.setswitchinterval(switch)
            writer.close()  # every row on disk and reported; raises what the writer hit
        if scheduler.errors:
            raise RuntimeError("recording evaluations failed: " + "; ".join(scheduler.errors))
    finally:
        for agent in agents:
            try:
                agent.stop()
            except Exception:
                pass
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    path = run.finish(evaluations=len(rows), statuses=counts)
    return {"run_id": run.run_id, "selected": len(jobs), "skipped_done": len(jobs) - len(todo),
            "rows": rows, "part_file": path, "statuses": counts, "not_started": scheduler.left}

