"""A sampling profiler for one thread: where its time goes, by function, self and cumulative.

Used by the worker under ``FIB_WORKER_PROFILE`` to see where an evaluation's host time goes on a
GPU (launches, Python overhead, waits in synchronize). Samples land where the profiled thread
lets the GIL go, so time inside long pure-Python stretches is attributed coarsely.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter


class Sampler:
    def __init__(self, interval_s: float = 0.0005, thread_id: int | None = None, lines_under: str = ""):
        self.interval_s = interval_s
        self.lines_under = lines_under
        self.target = thread_id or threading.get_ident()
        self.self_counts: Counter = Counter()
        self.total_counts: Counter = Counter()
        self.line_counts: Counter = Counter()  # innermost line of a file under ``lines_under``
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fib-host-sampler", daemon=True)

    def start(self) -> "Sampler":
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(self.interval_s)  # so the sampler gets the GIL between bytecodes
        self._thread.start()
        return self

    def stop(self) -> "Sampler":
        self._stop.set()
        self._thread.join()
        sys.setswitchinterval(self._switch)
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            frame = sys._current_frames().get(self.target)
            if frame is None:
                continue
            self.samples += 1
            seen = set()
            leaf, line = True, bool(self.lines_under)
            while frame is not None:
                code = frame.f_code
                key = f"{code.co_filename}:{code.co_firstlineno}({code.co_name})"
                if leaf:
                    self.self_counts[key] += 1
                    leaf = False
                if line and code.co_filename.startswith(self.lines_under):
                    # a torch call's time lands on the line that made it (C frames are invisible)
                    self.line_counts[f"{code.co_filename}:{frame.f_lineno}({code.co_name})"] += 1
                    line = False
                if key not in seen:
                    seen.add(key)
                    self.total_counts[key] += 1
                frame = frame.f_back

    def report(self, top: int = 60) -> str:
        n = max(self.samples, 1)
        lines = [f"{self.samples} samples every {self.interval_s * 1e3:g} ms"]
        tables = [("cumulative", self.total_counts), ("self", self.self_counts)]
        if self.lines_under:
            tables.append((f"innermost line under {self.lines_under}", self.line_counts))
        for title, counts in tables:
            lines += ["", f"by {title} share of samples:"]
            lines += [f"{100 * c / n:6.2f}%  {key}" for key, c in counts.most_common(top)]
        return "\n".join(lines) + "\n"
