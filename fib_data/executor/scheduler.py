"""Spread jobs over device agents with work stealing; isolate faults to the job that caused them.

Each agent (one per device, local process or Ray actor) owns a deque of jobs, grouped by workload
so a worker reuses its input pool and reference timing; an agent that runs dry steals from the
tail of the fullest deque. A solution that timed out is not run again in this run: its remaining
jobs are recorded as TIMEOUT (flag skipped_after_timeout) instead of costing a timeout each.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Mapping, Protocol, Sequence


class Agent(Protocol):
    name: str
    device: str

    def start(self, preload: tuple[str, ...] | None = None) -> dict: ...
    # An agent with ``pipelined = True`` also takes ``then`` (the job to send behind this one)
    # and answers ``holds(job)`` (sent, result still to come): see LocalAgent.
    def run(self, job: Mapping, timeout: float, build_timeout: float) -> dict: ...
    def stop(self) -> None: ...


class LocalAgent:
    """A spawn worker process on this host."""

    def __init__(self, name: str, device: str, preload: tuple[str, ...] | None = None):
        from .worker import PRELOAD, WorkerHandle

        self.name, self.device = name, device
        self.handle = WorkerHandle(device, preload=PRELOAD if preload is None else preload)

    def launch(self) -> None:
        self.handle.launch()

    def start(self, preload: tuple[str, ...] | None = None) -> dict:
        return self.handle.start(preload)

    #: ``run`` takes ``then``, the job to send behind this one (see ``worker.run_job``).
    pipelined = True

    def run(self, job: Mapping, timeout: float, build_timeout: float, then: Mapping | None = None) -> dict:
        from .worker import run_job

        return run_job(self.handle, job, timeout, build_timeout, then)

    def holds(self, job: Mapping) -> bool:
        return self.handle.holds(job)

    def stop(self) -> None:
        self.handle.stop(wait=False)


def distribute(jobs: Sequence[Mapping], n: int) -> list[deque]:
    """Whole workloads round-robin over ``n`` deques (largest groups first)."""
    groups: dict[str, list] = {}
    for job in jobs:
        groups.setdefault(job["workload"]["uuid"], []).append(job)
    queues = [deque() for _ in range(n)]
    for group in sorted(groups.values(), key=len, reverse=True):
        min(queues, key=len).extend(group)
    return queues


class Scheduler:
    def __init__(self, agents: Sequence[Any], timeout: float, build_timeout: float,
                 on_result: Callable[[Mapping, dict, Any], None], deadline: float | None = None):
        self.agents, self.timeout, self.build_timeout = list(agents), timeout, build_timeout
        self.deadline, self.left = deadline, 0
        self.on_result = on_result
        self.lock = threading.Lock()
        self.timed_out: dict[str, str] = {}
        self.errors: list[str] = []

    def _next(self, queues: list[deque], mine: int) -> Mapping | None:
        with self.lock:
            if self.deadline is not None and time.monotonic() > self.deadline:
                self.left = sum(len(q) for q in queues)
                return None
            if queues[mine]:
                return queues[mine].popleft()
            victim = max(range(len(queues)), key=lambda i: len(queues[i]))
            return queues[victim].pop() if queues[victim] else None

    def _timed_out(self, job: Mapping) -> str | None:
        with self.lock:
            return self.timed_out.get(job["solution"]["content_hash"])

    def _loop(self, agent, queues: list[deque], index: int) -> None:
        pipelined = getattr(agent, "pipelined", False)
        job = self._next(queues, index)
        while job is not None:
            # A pipelined agent gets the next job before this one's result is in (see run_job).
            after = self._next(queues, index) if pipelined else None
            earlier = self._timed_out(job)
            if earlier and not (pipelined and agent.holds(job)):
                raw = {"skipped": {"status": "TIMEOUT", "flag": "skipped_after_timeout",
                                   "why": f"not run: this solution timed out on workload {earlier}"},
                       "environment": getattr(agent, "environment", None)}
            else:
                then = after if after is not None and not self._timed_out(after) else None
                raw = agent.run(job, self.timeout, self.build_timeout, then) if pipelined else \
                    agent.run(job, self.timeout, self.build_timeout)
                if raw.get("fault") == "TIMEOUT":
                    with self.lock:
                        self.timed_out[job["solution"]["content_hash"]] = job["workload"]["uuid"]
            try:
                self.on_result(job, raw, agent)
            except Exception as exc:  # this agent stops; run_bench raises after the others finish
                self.errors.append(f"{agent.name}: {type(exc).__name__}: {exc}")
                return
            job = after if pipelined else self._next(queues, index)

    def run(self, jobs: Sequence[Mapping]) -> None:
        queues = distribute(jobs, len(self.agents))
        threads = [threading.Thread(target=self._loop, args=(a, queues, i), daemon=True,
                                    name=f"fib-bench-{a.name}") for i, a in enumerate(self.agents)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
