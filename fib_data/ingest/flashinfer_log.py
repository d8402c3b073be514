"""FlashInfer API logs (``FLASHINFER_LOGLEVEL=3``) -> calls with argument shapes -> kernel uses.

A call is logged in two writes: the inputs (``====`` line, ``[time] FlashInfer API Call: NAME``,
``----`` line, ``Positional input arguments:`` / ``Keyword input arguments:`` / ``Default
parameters ...`` sections) and, after the kernel returned, the outputs (``Output value:`` ...
``====``). Ranks that share one log interleave whole writes, so blocks are read write by write:
an inputs write ends where the next write starts, and each ``Output value:`` closes the oldest
call still waiting for one. A tensor must close its ``Tensor(`` ... ``)``; an inputs write that
is cut off is skipped. A call with no ``Output value:`` (crash, or the log ended) is kept and
counted in the report. Level-1 lines (name only) and the system-info banner carry no shapes.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from datetime import datetime
from pathlib import Path

from .calls import Call, Tensor, name_positional, to_uses
from .report import IngestReport

NOTES = ("FlashInfer API log (level 3): shapes and dtypes per call; per-sequence lengths split evenly "
         "over the plan's page count (all pages full) unless values were logged.")
_HEADER = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] FlashInfer API Call: (\S+)\s*$")
_RULE = re.compile(r"^(=+|-+)\s*$")
_ARG = re.compile(r"^  (?:arg\[(\d+)\]:|(\w+)=(?: \[DEFAULT\])?)\s*$")
_SECTIONS = ("Positional input arguments:", "Keyword input arguments:",
             "Default parameters (not explicitly provided):", "(No explicit arguments)")


def looks_like(head: str) -> bool:
    return "FlashInfer API Call:" in head


def read(paths: list[Path], report: IngestReport, model: str | None, tp: int):
    calls = []
    for path in paths:
        calls += parse_file(path, report)
    yield from to_uses(calls, report, model, tp)


def parse_file(path: Path, report: IngestReport) -> list[Call]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    report.lines_read += len(lines)
    calls: list[Call] = []
    waiting: deque[Call] = deque()
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _HEADER.match(line)
        framed = i > 0 and lines[i - 1].startswith("====")
        if header and not framed:
            report.drop("level-1 call line (no shapes)")
            i += 1
        elif header:
            end = _write_end(lines, i + 1)
            call = _inputs(lines[i + 1:end], header, f"{path}:{i + 1}", report)
            if call is not None:
                report.batches_found += 1
                calls.append(call)
                waiting.append(call)
            i = end
        elif line.startswith("Output value:"):
            end = _write_end(lines, i + 1, outputs=True)
            if waiting:
                waiting.popleft().complete = True
            else:
                report.skip("Output value: with no call waiting for it", f"{path}:{i + 1}")
            i = end
        else:
            i += 1
    if waiting:
        report.note(f"flashinfer log: {len(waiting)} call(s) with no 'Output value:' (crashed or cut "
                    f"off); their input shapes are kept")
    return calls


def _write_end(lines: list[str], start: int, outputs: bool = False) -> int:
    """Index just past the write that started before ``start``."""
    for j in range(start, len(lines)):
        text = lines[j]
        if outputs and text.startswith("===="):
            return j + 1
        if not outputs and (text.startswith("====") or text.startswith("Output value:") or _HEADER.match(text)):
            return j
    return len(lines)


def _inputs(block: list[str], header: re.Match, where: str, report: IngestReport) -> Call | None:
    body = [b for b in block if not _RULE.match(b) and b.strip() and b not in _SECTIONS]
    foreign = next((b for b in body if not b.startswith("  ")), None)
    if foreign is not None:  # every argument line is indented: this one came from another writer
        report.skip("malformed argument line in a call block", where, foreign)
        return None
    positional: dict[int, object] = {}
    keyword: dict[str, object] = {}
    j = 0
    while j < len(body):
        m = _ARG.match(body[j])
        if not m:
            report.skip("malformed argument line in a call block", where, body[j])
            return None
        k = j + 1
        while k < len(body) and not _ARG.match(body[k]):
            k += 1
        value = _value([b.strip() for b in body[j + 1:k]])
        if value is _CUT:
            report.skip("truncated call block (unclosed Tensor)", where, header.group(2))
            return None
        if m.group(1) is not None:
            positional[int(m.group(1))] = value
        else:
            keyword[m.group(2)] = value
        j = k
    name = header.group(2)
    args = [positional[i] for i in sorted(positional)]
    call = Call(name, name_positional(name, args, keyword), where=where,
                when=datetime.fromisoformat(header.group(1)), complete=False)
    return call


_CUT = object()


def _value(lines: list[str]):
    """A logged value: a Tensor(...) block, a list/tuple of them, or a Python literal."""
    if not lines:
        return None
    first = lines[0]
    if first == "Tensor(":
        if lines[-1] != ")":
            return _CUT
        fields = dict(l.split("=", 1) for l in lines[1:-1] if "=" in l)
        shape = ast.literal_eval(fields.get("shape", "()"))
        return Tensor(tuple(int(x) for x in shape), fields.get("dtype", "").replace("torch.", ""))
    if first in ("(", "[") and len(lines) > 1:
        items, current = [], []
        for l in lines[1:-1]:
            m = re.match(r"^\[\d+\]: (.*)$", l)
            if m:
                if current:
                    items.append(_value(current))
                current = [m.group(1)]
            else:
                current.append(l)
        if current:
            items.append(_value(current))
        return _CUT if any(v is _CUT for v in items) else items
    text = " ".join(lines)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
