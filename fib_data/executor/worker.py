"""One persistent ``spawn`` worker process per device; the only place solution code runs.

The worker binds its clocks and snapshots the functions it relies on before it imports any
solution, then serves evaluation jobs over a pipe. ``WorkerHandle`` is the parent's side: it
enforces the timeout, notices crashes, and replaces the process; ``run_job`` turns any fault into
a raw record (never an exception), so one bad solution costs only its own evaluation.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Any, Mapping


#: Imported at worker start (when some job needs them) so that what their import changes belongs
#: to the integrity baseline, not to the first solution that uses them.
PRELOAD = ("triton", "flashinfer")


def modules_needed(jobs) -> tuple[str, ...]:
    """The PRELOAD modules any of ``jobs``' solutions declares or names in its sources."""
    found = set()
    for job in jobs:
        sol = job["solution"]
        text = " ".join([*(sol.get("dependencies") or []), sol.get("language") or "",
                         *(src["content"] for src in sol.get("sources") or [])])
        found |= {m for m in PRELOAD if m in text}
        if "torch.compile" in text:  # inductor generates and imports triton kernels
            found.add("triton")
    return tuple(m for m in PRELOAD if m in found)


def _serve(conn, device: str) -> None:
    born, steps = time.monotonic(), {}

    def lap(name: str) -> None:  # seconds since the previous step (start-up cost, in the manifest)
        steps[name] = time.monotonic() - born - sum(steps.values())

    # Inductor compiles in a pool of up to 32 subprocesses, started at the first torch.compile;
    # each imports torch, which can keep the cores busy for seconds while later evaluations are
    # timed (on the H100, host enqueue times were up to 4x longer in the seconds after a compile).
    # The pre-builds have filled inductor's caches, so compile in-process.
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    if not device.startswith("cuda"):
        os.environ.setdefault("TRITON_INTERPRET", "1")  # triton solutions run in its interpreter on CPU
    else:  # the context opens while torch imports (0.3 s on an H100 machine, of a 4-6 s start)
        from .cuda_driver import open_context_early

        opening = open_context_early(int(device.partition(":")[2] or 0))
    # Imported in this order on purpose: clocks and snapshots first, solutions only later.
    from . import timing

    import torch

    lap("import_torch")
    if device.startswith("cuda"):
        opening.join(60)
        torch.cuda.set_device(device)
        torch.empty(1, device=device)  # torch's own CUDA start-up, counted here
    timing.capture_cuda()
    # Made here, before any solution code can patch what it relies on (torch, ctypes).
    hold = timing.make_hold() if device.startswith("cuda") else None
    lap("device_context")
    from . import correctness, evaluate, integrity, reference, sampler_eval  # noqa: F401  (snapshotted below)
    from .environment import capture_environment
    from .roofline import PEAKS, measure_peaks

    # The modules to preload come once the parent has read the jobs: it launches workers first, so
    # that their torch import overlaps its own reading of the dataset.
    message = conn.recv()
    if message[0] != "preload":
        return
    for module in message[1]:
        try:
            importlib.import_module(module)
        except Exception:
            pass
    lap("import_preload")
    env = capture_environment(device)
    measured = None if any(f in env["hardware"] for f, _, _ in PEAKS) else measure_peaks(device)
    state = evaluate.WorkerState(device=device, snapshot=integrity.Snapshot(), hold=hold)
    lap("environment_snapshot")
    conn.send(("ready", {"environment": env, "measured_peaks": measured, "pid": os.getpid(),
                         "start_s": {k: round(v, 3) for k, v in steps.items()}}))
    _loop(conn, state)


def _loop(conn, state) -> None:
    from . import evaluate

    profile = _profiler()
    blobs: dict[str, bytes] = {}  # the last job's blobs: the parent sends only those it lacks
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message[0] == "stop":
            if profile is not None:
                _dump_profile(profile.stop())
            # Every result is sent already: skip the interpreter's teardown (seconds with torch
            # and a CUDA context loaded) so the run ends when the work does.
            sys.stdout.flush()
            sys.stderr.flush()
            conn.close()
            os._exit(0)
        job = message[1]
        blobs = {sha: blobs[sha] for sha in job.pop("blobs_kept", ()) if sha in blobs} | job["blobs"]
        job["blobs"] = blobs
        with _captured_output() as log:
            raw = evaluate.evaluate(state, job)
        raw["log"] = log.read()
        conn.send(("result", raw))


def _profiler():
    """``FIB_WORKER_PROFILE=DIR``: sample where the worker's jobs spend host time (GPU waits
    included) and write ``DIR/worker-<pid>.txt`` when it stops. A sampling thread, not cProfile:
    the reference watch (``sys.setprofile``) would displace a deterministic profiler."""
    if not os.environ.get("FIB_WORKER_PROFILE"):
        return None
    from .hostprofile import Sampler

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return Sampler(lines_under=package).start()


def _dump_profile(profile) -> None:
    from pathlib import Path

    folder = Path(os.environ["FIB_WORKER_PROFILE"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"worker-{os.getpid()}.txt").write_text(profile.report())


class _captured_output:
    """Send fd 1 and 2 (Python, C++ and CUDA printf alike) to a temp file during one job."""

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile()
        self.saved = (os.dup(1), os.dup(2))
        os.dup2(self.file.fileno(), 1)
        os.dup2(self.file.fileno(), 2)
        return self

    def read(self, limit: int = 4000) -> str:
        self.file.seek(0)
        data = self.file.read()
        self.file.close()
        return data[-limit:].decode(errors="replace")

    def __exit__(self, *exc):
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        os.close(self.saved[0])
        os.close(self.saved[1])


_MAIN_LOCK = threading.Lock()


@contextmanager
def _main_hidden():
    """Spawn without the parent's ``__main__``: the worker's target lives in this module, and
    ``spawn`` would otherwise re-run the parent's main module (the CLI and all it imports, or a
    benchmark script) in every worker before it can start importing torch."""
    main = sys.modules.get("__main__")
    with _MAIN_LOCK:  # workers of several devices start from parallel threads
        saved = {k: main.__dict__[k] for k in ("__spec__", "__file__") if main and k in main.__dict__}
        try:
            for k in saved:
                main.__dict__[k] = None
            yield
        finally:
            if main is not None:
                main.__dict__.update(saved)


class WorkerFault(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


class WorkerHandle:
    def __init__(self, device: str, start_timeout: float = 300.0, preload: tuple[str, ...] = PRELOAD):
        self.device, self.preload = device, tuple(preload)
        self.start_timeout = start_timeout
        self.process = None
        self.conn = None
        self.info: dict = {}
        self.built: set[str] = set()
        self.blobs_held: set[str] = set()  # shas of the blobs the current worker process holds
        self.starts = 0
        self.queued: deque = deque()  # (id of the job, solution hash, limit) sent, results to come
        self.head_since = 0.0  # when the oldest queued job could start

    def launch(self) -> None:
        """Spawn the process without waiting: it imports torch and opens its CUDA context, then
        waits for ``start`` to name the modules to preload."""
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, self.device), daemon=True,
                                   name=f"fib-worker-{self.device}")
        with _main_hidden():
            self.process.start()
        child.close()
        self.conn = parent
        self.built, self.blobs_held = set(), set()
        self.starts += 1

    def start(self, preload: tuple[str, ...] | None = None) -> dict:
        """Launch the process unless ``launch`` already did, preload modules, wait until ready."""
        if preload is not None:
            self.preload = tuple(preload)
        alive = self.process is not None and self.process.is_alive()
        if alive and self.info.get("pid") == self.process.pid:
            return self.info  # started already: a second preload message would read as a job
        if not alive:
            self.launch()
        try:
            self.conn.send(("preload", self.preload))
        except (BrokenPipeError, OSError):
            pass  # it died while starting: _receive reports how
        kind, info = self._receive(self.start_timeout, "starting")
        self.info = info
        return info

    @property
    def environment(self) -> dict:
        return self.info["environment"]

    def _receive(self, timeout: float, doing: str) -> tuple[str, Any]:
        if not self.conn.poll(timeout):
            self.kill()
            raise WorkerFault("TIMEOUT", f"no answer within {timeout:.0f} s while {doing}")
        try:
            return self.conn.recv()
        except (EOFError, OSError, ConnectionError):
            self.process.join(5)
            code = self.process.exitcode
            self.kill()
            how = f"killed by signal {-code}" if code and code < 0 else f"exit code {code}"
            raise WorkerFault("RUNTIME_ERROR", f"worker died while {doing} ({how})") from None

    def evaluate(self, job: Mapping, timeout: float, build_timeout: float = 0.0) -> dict:
        self.submit(job, timeout, build_timeout)
        return self.collect()

    def submit(self, job: Mapping, timeout: float, build_timeout: float = 0.0) -> bool:
        """Send ``job``; the worker runs it after the jobs sent before it. Sending the next job
        before the last result is in keeps the worker from waiting on the parent between jobs.
        False if not sent: the worker died on an earlier job, which ``collect`` reports."""
        alive = self.process is not None and self.process.is_alive()
        if self.queued and not alive:
            return False
        if not alive:
            self.start()
        key = job["solution"]["content_hash"]
        limit = timeout + (0.0 if key in self.built else build_timeout)
        blobs = job.get("blobs") or {}
        message = {**job, "blobs": {sha: data for sha, data in blobs.items() if sha not in self.blobs_held},
                   "blobs_kept": [sha for sha in blobs if sha in self.blobs_held]}
        try:
            self.conn.send(("eval", message))
        except (BrokenPipeError, OSError):
            if self.queued:
                return False
            self.kill()
            raise WorkerFault("RUNTIME_ERROR", "worker pipe closed before the job was sent") from None
        self.blobs_held = set(blobs)  # the worker keeps exactly the last job's blobs (see _loop)
        if not self.queued:
            self.head_since = time.monotonic()
        self.queued.append((id(job), key, limit))
        return True

    def holds(self, job: Mapping) -> bool:
        """Whether ``job`` was sent to the current worker process and its result is still to come."""
        return any(ident == id(job) for ident, _, _ in self.queued)

    def collect(self, job: Mapping | None = None) -> dict:
        """The result of the oldest job sent (``job``, when given, must be that one: results come
        in the order jobs were sent). Its time limit counts from when the worker could start it:
        when it was sent, or when the job before it finished."""
        ident, key, limit = self.queued[0]
        if job is not None and ident != id(job):
            raise RuntimeError("a job was sent to this worker ahead of the one collected")
        left = limit - (time.monotonic() - self.head_since)
        _, raw = self._receive(max(left, 0.0), f"evaluating (limit {limit:.0f} s)")
        self.queued.popleft()
        raw["wall_s"], self.head_since = time.monotonic() - self.head_since, time.monotonic()
        self.built.add(key)
        return raw

    def kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join(10)
        if self.conn is not None:
            self.conn.close()
        self.process, self.conn = None, None
        self.blobs_held = set()
        self.queued.clear()  # what was sent is lost with the process

    def stop(self, wait: bool = True) -> None:
        """Ask the worker to exit. ``wait=False`` returns at once and a thread reaps it: its exit
        (the CUDA context's teardown, about 0.2 s on an H100 machine) then overlaps what the
        parent does next instead of ending every run."""
        process = self.process
        if process is not None and process.is_alive():
            try:
                self.conn.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
            if not wait:
                self.conn.close()
                self.process, self.conn = None, None
                threading.Thread(target=_reap, args=(process,), daemon=True, name="fib-worker-reaper").start()
            else:
                process.join(10)
        self.kill()


def _reap(process, grace: float = 10.0) -> None:
    process.join(grace)
    if process.is_alive():
        process.kill()
        process.join(5)


def run_job(handle: WorkerHandle, job: Mapping, timeout: float, build_timeout: float,
            then: Mapping | None = None) -> dict:
    """Evaluate ``job`` on ``handle``; faults become raw records and the worker is replaced.

    ``then`` is sent behind ``job`` before its result is awaited, so the worker goes on to it at
    once; a worker replaced because of ``job`` never ran it (``handle.holds(then)`` is false).
    """
    started = time.monotonic()
    try:
        if not handle.holds(job):
            handle.submit(job, timeout, build_timeout)
        if then is not None:
            handle.submit(then, timeout, build_timeout)
        raw = handle.collect(job)
    except WorkerFault as fault:
        handle.kill()
        raw = {"fault": fault.status, "fault_message": str(fault), "trials": [], "tampered": [],
               "wall_s": time.monotonic() - started}
    if raw.get("tampered") or raw.get("fatal"):
        handle.kill()  # the next job starts a clean worker
    raw["environment"] = handle.info.get("environment")
    raw["measured_peaks"] = handle.info.get("measured_peaks")
    return raw
