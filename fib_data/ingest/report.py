"""What an ingest read, kept, skipped and added: the summary printed at the end of `fib ingest`.

``skipped`` is bad input (malformed, truncated, interleaved, impossible values); ``--strict``
turns any of it into a failure. ``dropped`` is input set aside on purpose (a second rank's copy
of a batch, warm-up requests, idle intervals) and never fails an ingest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

SAMPLES_PER_REASON = 3


class IngestError(RuntimeError):
    """An ingest that cannot go on (bad arguments, --strict with skipped input, unknown format)."""


@dataclass
class IngestReport:
    lines_read: int = 0
    batches_found: int = 0
    skipped: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    workloads: Counter = field(default_factory=Counter)
    weights: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, where: str, text: str = "", count: int = 1) -> None:
        self.skipped[reason] += count
        self._sample(reason, where, text)

    def skip_many(self, reason: str, count: int, samples: list[tuple[str, str]]) -> None:
        self.skipped[reason] += count
        for where, text in samples:
            self._sample(reason, where, text)

    def drop(self, reason: str, count: int = 1, where: str = "", text: str = "") -> None:
        self.dropped[reason] += count
        if where:
            self._sample(reason, where, text)

    def _sample(self, reason: str, where: str, text: str) -> None:
        samples = self.samples.setdefault(reason, [])
        if len(samples) < SAMPLES_PER_REASON:
            samples.append(f"{where}: {text[:160]}" if text else where)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def added(self, definition: str, weight: int) -> None:
        self.workloads[definition] += 1
        self.weights[definition] += weight

    @property
    def total_weight(self) -> int:
        return sum(self.weights.values())

    def check_strict(self) -> None:
        if self.skipped:
            raise IngestError("--strict: input was skipped:\n" + "\n".join(self.skip_lines()))

    def skip_lines(self) -> list[str]:
        out = []
        for reason, n in sorted(self.skipped.items(), key=lambda kv: -kv[1]):
            out.append(f"{reason}: {n}")
            out += [f"    {s}" for s in self.samples.get(reason, [])]
        return out

    def render(self) -> str:
        lines = [f"lines read: {self.lines_read}", f"batches found: {self.batches_found}"]
        lines.append(f"skipped: {sum(self.skipped.values())}")
        lines += [f"  {s}" for s in self.skip_lines()]
        if self.dropped:
            lines.append("dropped on purpose: " + ", ".join(f"{r}: {n}" for r, n in sorted(self.dropped.items())))
        lines.append(f"workloads added: {sum(self.workloads.values())} (total weight {self.total_weight})")
        for name in sorted(self.workloads):
            lines.append(f"  {name}: {self.workloads[name]} workloads, weight {self.weights[name]}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
