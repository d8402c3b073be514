"""Public request traces -> requests (arrival time, prompt tokens, output tokens, prefix blocks).

* ShareGPT JSON: ``[{"id", "conversations": [{"from": "human", "value"}, {"from": "gpt", ...}]}]``.
  As vLLM/SGLang ``bench_serving``: conversations with >= 2 turns, turn 0 is the prompt and turn 1
  sets the output length. No timestamps: every request arrives at t=0. Token counts come from a
  tokenizer (``--tokenizer tokenizer.json``, needs the ``tokenizers`` package) or else from
  ``len(text) / chars_per_token`` (default 4.0, the usual English estimate), at least 1.
* BurstGPT CSV: ``Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`` (v1.1
  adds ``Session ID,Elapsed time``); Timestamp is relative seconds; failed requests
  (``Response tokens`` 0) are dropped.
* Azure LLM inference CSV: ``TIMESTAMP,ContextTokens,GeneratedTokens``, absolute time with 7
  fractional digits; arrivals are made relative to the first row.
* Mooncake JSONL: ``{"timestamp" (ms), "input_length", "output_length", "hash_ids"}``;
  ``hash_ids`` name 512-token prefix blocks, shared leading ids mean a shared prefix.

Columns are found by header name, never by position. Bad rows are skipped with file:line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .report import IngestReport

DEFAULT_CHARS_PER_TOKEN = 4.0
KINDS = ("sharegpt", "burstgpt", "azure", "mooncake")


@dataclass(frozen=True)
class Request:
    arrival_s: float
    input_len: int
    output_len: int
    hash_ids: tuple[int, ...] = ()
    where: str = ""


def detect(path: Path, head: str) -> str | None:
    """The trace kind from a file's first bytes (CSV header names, JSON keys), or None."""
    first = head.lstrip()
    header = first.split("\n", 1)[0].lower()
    if "contexttokens" in header and "generatedtokens" in header:
        return "azure"
    if "request tokens" in header and "response tokens" in header:
        return "burstgpt"
    if first.startswith("{") and '"input_length"' in first:
        return "mooncake"
    if first.startswith("[") and '"conversations"' in first:
        return "sharegpt"
    return None


def read(kind: str, path: Path, report: IngestReport, chars_per_token: float = DEFAULT_CHARS_PER_TOKEN,
         tokenizer: str | None = None) -> list[Request]:
    if kind == "sharegpt":
        return _sharegpt(path, report, _counter(chars_per_token, tokenizer))
    if kind == "mooncake":
        return _mooncake(path, report)
    return _csv(kind, path, report)


def _counter(chars_per_token: float, tokenizer: str | None):
    if tokenizer:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise RuntimeError("--tokenizer needs the 'tokenizers' package (pip install tokenizers)") from None
        tok = Tokenizer.from_file(tokenizer)
        return lambda text: max(1, len(tok.encode(text).ids))
    if chars_per_token <= 0:
        raise ValueError("chars_per_token must be positive")
    return lambda text: max(1, round(len(text) / chars_per_token))


def _sharegpt(path: Path, report: IngestReport, count) -> list[Request]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: a ShareGPT file is a JSON array of conversations")
    out = []
    for i, item in enumerate(data):
        report.lines_read += 1
        where = f"{path}:[{i}]"
        turns = item.get("conversations") if isinstance(item, dict) else None
        if not isinstance(turns, list) or len(turns) < 2:
            report.drop("conversation with fewer than 2 turns")
            continue
        texts = [t.get("value") if isinstance(t, dict) else None for t in turns[:2]]
        if not all(isinstance(t, str) for t in texts):
            report.skip("turn without a text value", where, json.dumps(item)[:160])
            continue
        out.append(Request(0.0, count(texts[0]), count(texts[1]), where=where))
    return out


def _mooncake(path: Path, report: IngestReport) -> list[Request]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            report.lines_read += 1
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                obj = json.loads(line)
                req = Request(float(obj["timestamp"]) / 1000.0, _count(obj["input_length"]),
                              _count(obj["output_length"]), tuple(int(h) for h in obj.get("hash_ids") or ()),
                              where)
            except (ValueError, KeyError, TypeError) as exc:
                report.skip(f"bad mooncake row ({type(exc).__name__})", where, line.strip())
                continue
            out.append(req)
    return out


_CSV_COLUMNS = {
    "burstgpt": ("timestamp", "request tokens", "response tokens"),
    "azure": ("timestamp", "contexttokens", "generatedtokens"),
}


def _csv(kind: str, path: Path, report: IngestReport) -> list[Request]:
    out = []
    start = None
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        report.lines_read += 1
        names = _CSV_COLUMNS[kind]
        missing = [n for n in names if n not in header]
        if missing:
            raise ValueError(f"{path}: {kind} CSV header lacks {', '.join(missing)} (has {', '.join(header)})")
        at = [header.index(n) for n in names]
        for number, row in enumerate(reader, 2):
            report.lines_read += 1
            where = f"{path}:{number}"
            try:
                stamp, inp, outp = (row[i].strip() for i in at)
                when = float(stamp) if kind == "burstgpt" else _azure_time(stamp)
                inp_n, out_n = int(inp), int(outp)
            except (ValueError, IndexError) as exc:
                report.skip(f"bad {kind} row ({type(exc).__name__})", where, ",".join(row))
                continue
            if kind == "burstgpt" and out_n == 0:
                report.drop("failed request (Response tokens 0)")
                continue
            if inp_n < 1 or out_n < 1:
                report.skip(f"impossible {kind} row (token count < 1)", where, ",".join(row))
                continue
            start = when if start is None else start
            out.append(Request(when - start if kind == "azure" else when, inp_n, out_n, where=where))
    return out


def _azure_time(stamp: str) -> float:
    # Seven fractional digits are more than datetime parses: keep microseconds.
    head, _, frac = stamp.partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}" if frac else head).timestamp()


def _count(value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"token count must be a positive integer, got {value!r}")
    return int(value)
