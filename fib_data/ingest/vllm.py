"""vLLM periodic metrics lines -> decode batches derived from interval aggregates.

vLLM logs no per-batch line, only ``Avg prompt throughput ... Running: N reqs, Waiting: M reqs,
GPU KV cache usage: x%`` every ``VLLM_LOG_STATS_INTERVAL`` seconds (V1 ``Engine 000:`` wording
and V0 ``Swapped/Pending`` wording; ``(APIServer pid=N)`` prefixes; ``MM-DD`` dates without a
year). Each line becomes one decode batch, which is a model of the interval, not a measured
step:

* batch size = ``Running`` (a snapshot at the end of the interval);
* KV tokens = ``GPU KV cache usage`` x KV capacity, split evenly over the running requests (the
  capacity comes from the startup line ``GPU KV cache size: N tokens``, or ``# GPU blocks: N`` x
  block size, or ``--kv-capacity``);
* weight = decode steps in the interval = generation throughput x interval / batch size.

Prompt throughput gives prefill tokens per interval but no batch split, so no prefill batches
are made; the total is reported. ``measured_axes`` stays empty on every row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .batches import Batch
from .report import IngestError, IngestReport

DEFAULT_STATS_INTERVAL_S = 10.0  # VLLM_LOG_STATS_INTERVAL
DEFAULT_BLOCK_SIZE = 16

_ANCHOR = "Avg prompt throughput:"
_FIELDS = {
    "prompt": re.compile(r"Avg prompt throughput: ([^ ,]+) tokens/s"),
    "generation": re.compile(r"Avg generation throughput: ([^ ,]+) tokens/s"),
    "running": re.compile(r"Running: ([^ ,]+) reqs"),
    "kv_usage": re.compile(r"GPU KV cache usage: ([^ ,%]+)%"),
}
_ENGINE = re.compile(r"Engine (\d+):")
_STAMP = re.compile(r"(?:(\d{4})-)?(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)")
_CAPACITY_TOKENS = re.compile(r"GPU KV cache size: ([\d,]+) tokens")
_CAPACITY_BLOCKS = re.compile(r"# GPU blocks: (\d+)")
_MAX_SEQS = re.compile(r"max_num_seqs=(\d+)")


@dataclass
class VLLMOptions:
    kv_capacity: int | None = None
    stats_interval: float = DEFAULT_STATS_INTERVAL_S
    block_size: int = DEFAULT_BLOCK_SIZE


def looks_like(head: str) -> bool:
    return _ANCHOR in head and "Running:" in head


def parse(paths: list[Path], report: IngestReport, options: VLLMOptions | None = None) -> list[Batch]:
    options = options or VLLMOptions()
    batches: list[Batch] = []
    prompt_tokens = 0.0
    for path in paths:
        state = _FileState(options, year=datetime.fromtimestamp(path.stat().st_mtime).year)
        with open(path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                report.lines_read += 1
                state.read_startup(line)
                if _ANCHOR not in line:
                    continue
                report.batches_found += 1
                found = state.batch(line, f"{path}:{number}", report)
                if found is not None:
                    batch, prompt = found
                    prompt_tokens += prompt
                    if batch is not None:
                        batches.append(batch)
    if batches or prompt_tokens:
        report.note(f"vllm: interval aggregates, not per-batch shapes: decode batch size = Running, "
                    f"KV length = GPU KV cache usage x capacity / Running, weight = decode steps in "
                    f"the interval; {prompt_tokens:.0f} prompt tokens seen but not batched (no split "
                    f"logged); MM-DD stamps dated in the year of the file's mtime")
    return batches


class _FileState:
    def __init__(self, options: VLLMOptions, year: int):
        self.options = options
        self.capacity = options.kv_capacity
        self.max_seqs: int | None = None
        self.year = year
        self.last: dict[str, datetime] = {}

    def read_startup(self, line: str) -> None:
        if self.options.kv_capacity is None:
            m = _CAPACITY_TOKENS.search(line)
            if m:
                self.capacity = int(m.group(1).replace(",", ""))
            m = _CAPACITY_BLOCKS.search(line)
            if m and self.capacity is None:
                self.capacity = int(m.group(1)) * self.options.block_size
        m = _MAX_SEQS.search(line)
        if m:
            self.max_seqs = int(m.group(1))

    def batch(self, line: str, where: str, report: IngestReport):
        """(batch or None, prompt tokens), or None when the line is skipped."""
        if line.count(_ANCHOR) > 1:
            report.skip("interleaved lines", where, line.strip())
            return None
        values = {}
        for name, rx in _FIELDS.items():
            m = rx.search(line)
            if m is None:
                report.skip(f"missing {name}", where, line.strip())
                return None
            try:
                values[name] = float(m.group(1))
            except ValueError:
                report.skip(f"non-numeric {name}", where, line.strip())
                return None
        running = values["running"]
        if running != int(running) or running < 0 or min(values.values()) < 0 or values["kv_usage"] > 100:
            report.skip("impossible value (negative, fractional Running or usage above 100%)", where, line.strip())
            return None
        if self.max_seqs and running > self.max_seqs:
            report.skip(f"above startup capacity (max_num_seqs={self.max_seqs})", where, line.strip())
            return None
        when = self._time(line)
        engine = (_ENGINE.search(line) or [None, ""])[1]
        interval = self._interval(engine, when)
        prompt = values["prompt"] * interval
        running = int(running)
        if running == 0 or values["generation"] == 0:
            report.drop("idle interval (no running or generating requests)")
            return None, prompt
        if self.capacity is None:
            raise IngestError(f"{where}: vLLM KV capacity unknown (no 'GPU KV cache size' startup line); "
                              f"pass --kv-capacity TOKENS")
        kv = max(running, round(values["kv_usage"] / 100 * self.capacity))
        steps = max(1, round(values["generation"] * interval / running))
        return Batch("decode", running, running, kv, weight=steps, where=where, observed_at=when,
                     measured=()), prompt

    def _time(self, line: str) -> datetime | None:
        m = _STAMP.search(line)
        if not m:
            return None
        year, month, day, hh, mm, ss = m.groups()
        when = datetime(int(year or self.year), int(month), int(day), int(hh), int(mm), int(ss))
        return when

    def _interval(self, engine: str, when: datetime | None) -> float:
        last = self.last.get(engine)
        if when is None:
            return self.options.stats_interval
        self.last[engine] = when
        if last is None:
            return self.options.stats_interval
        gap = (when - last).total_seconds()
        if gap < 0:  # a log that crosses New Year without a year in its stamps
            gap += 365 * 86400
        # Idle intervals are logged at DEBUG (V1), so a long gap means idle time, not one interval.
        return gap if 0 < gap <= 3 * self.options.stats_interval else self.options.stats_interval
