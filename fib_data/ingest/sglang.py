"""SGLang scheduler logs: ``Prefill batch`` / ``Decode batch`` lines -> a batch frame.

Fields are read by name (``#new-seq: 2``), never by position, so every drift variant parses:
``.`` or ``,`` after "batch", ``Prefill batch(mixed #running-req: N).``, optional ``cache hit
rate``, ``cuda graph``, ``timestamp``, ``#pending-token``, ``full/swa token usage``,
``#full token`` for ``#token``, rank tags (``TP0``, ``DP0 TP0 EP0``, ``PP0 ATTN_CP0 TP0``) and any
prefix before the anchor (docker, k8s). A file is read a chunk of bytes at a time; a chunk's
batch lines become numpy columns (``BatchLines``) with no Python object per line: plain ASCII
chunks are read in place (``sglang_bytes``), others through polars string ops on the lines
(``sglang_text``). The checks, the rank policy and the shapes are numpy work on those columns
(this module); shapes are merged with a sort from time to time, so memory stays bounded by the
chunk size and the number of distinct shapes.

Meaning of the fields (serving_logs.md): prefill batch_size = #new-seq, q tokens = #new-token,
kv tokens = #new-token + #cached-token; decode batch_size = #running-req and #token = KV slots in
use in the whole pool, an upper bound on the sum of the KV lengths. Decode lines are printed
every ``--decode-log-interval`` steps (SGLang's default 40), so each stands for that many steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from . import sglang_bytes, sglang_text
from .lines import Chunk, iter_chunks
from .report import IngestReport
from .scan import find_all, has_pair, words
from .sglang_format import CORE, TAG, BatchLines
from .sglang_shapes import EMPTY, LOC_BITS, Shapes, to_frame

DEFAULT_DECODE_LOG_INTERVAL = 40  # sglang ServerArgs.decode_log_interval
# Small enough that a chunk's per-line arrays stay in the CPU caches (measured: 2-4 MB are the
# fastest, 16 MB costs 15% more, 32 MB 25%), large enough that numpy's per-call cost is small.
# The "fired up" line is looked for in a file's first chunk: 4 MB of startup log is ample.
CHUNK_BYTES = 4 << 20
_CAPACITY = re.compile(r"\b(max_total_num_tokens|chunked_prefill_size|max_prefill_tokens|"
                       r"max_running_requests|context_len)=(-?\d+)")
_FIRED_UP = b"The server is fired up"
_SPECULATIVE = ("sglang: speculative decoding lines (accept len) mapped with one query token per request; "
                "draft tokens per step are not logged")


@dataclass
class Capacities:
    """Startup limits printed by SGLang; values above them are impossible."""
    values: dict[str, int] = field(default_factory=dict)

    def update_from(self, data: bytes) -> None:
        key = b"max_total_num_tokens="
        if b"=" not in data:  # a memchr: a fraction of the search for the key
            return
        at = data.find(key)
        while at >= 0:
            end = data.find(b"\n", at)
            text = data[data.rfind(b"\n", 0, at) + 1:end].decode(errors="replace")
            self.values.update({k: int(v) for k, v in _CAPACITY.findall(text)})
            at = data.find(key, end)

    def limit(self, *names: str) -> int | None:
        vals = [self.values[n] for n in names if self.values.get(n, 0) > 0]
        return max(vals) if vals else None


@dataclass
class SGLangOptions:
    decode_log_interval: int = DEFAULT_DECODE_LOG_INTERVAL
    chunk_bytes: int = CHUNK_BYTES
    #: Rank tag to keep ("TP0", "DP1 TP4 EP4"); None keeps the first tag seen per DP group.
    rank: str | None = None


def looks_like(head: str) -> bool:
    return re.search(r"(Prefill|Decode) batch[.,(]", head) is not None


def parse(paths: list[Path], report: IngestReport, options: SGLangOptions | None = None) -> pl.DataFrame:
    """All files -> one batch frame (distinct shapes with summed weights)."""
    options = options or SGLangOptions()
    shapes = Shapes()
    for index, path in enumerate(paths):
        caps = Capacities()
        ranks: dict[str, str] = {}
        for chunk in iter_chunks(path, options.chunk_bytes):
            caps.update_from(chunk.data)
            shapes.add(_parse_chunk(chunk, str(path), index, caps, ranks, options, report))
            report.lines_read += chunk.n_lines
    merged = shapes.result()
    if len(merged["loc"]):
        report.note(f"sglang: decode lines weighted x{options.decode_log_interval} "
                    f"(--decode-log-interval); decode KV totals are #token, an upper bound")
    return to_frame(merged, paths)


def _parse_chunk(chunk: Chunk, file: str, index: int, caps: Capacities, ranks: dict[str, str],
                 options: SGLangOptions, report: IngestReport) -> dict[str, np.ndarray]:
    lines = sglang_bytes.batch_lines(chunk) if chunk.plain else sglang_text.batch_lines(chunk)
    if lines is None:
        return EMPTY
    report.batches_found += len(lines)
    if _SPECULATIVE not in report.notes and _speculative(chunk, lines):
        report.note(_SPECULATIVE)
    reason, labels = _reasons(lines, caps)
    warmup_before = _fired_up_row(chunk) if chunk.first_line == 1 else None
    keep = _drop_policy(lines, reason, warmup_before, ranks, options, report)
    _record_skips(lines.row[keep], reason[keep], labels, chunk, file, report)
    return _to_part(lines, keep & (reason == 0), chunk, index, options)


def _speculative(chunk: Chunk, lines: BatchLines) -> bool:
    key = b"accept len:"
    # "cc" is rare in a scheduler log and cheap to look for; the search for the key is not.
    if not has_pair(chunk.buf, b"cc") or key not in chunk.data:
        return False
    decode_rows = lines.row[lines.decode]
    if not chunk.plain:
        return bool(chunk.lines.gather(decode_rows).str.contains(key.decode(), literal=True).any())
    found = np.searchsorted(chunk.ends, find_all(chunk.buf, words(chunk.buf), key))
    return bool(np.isin(found, decode_rows).any())


def _fired_up_row(chunk: Chunk) -> int | None:
    at = chunk.data.find(_FIRED_UP)
    return chunk.row_of(at) if at >= 0 else None


def _reasons(lines: BatchLines, caps: Capacities) -> tuple[np.ndarray, list[str | None]]:
    """Why each batch line is unusable: an index into the returned labels (0: None, usable).
    Checks are made in order and the first that fails wins."""
    checks = _checks(lines, caps)
    labels = [None, *dict.fromkeys(label for label, _ in checks)]  # a label may serve both stages
    code = np.zeros(len(lines), dtype=np.int16)
    for label, rows in reversed(checks):  # later checks first, so that earlier ones overwrite them
        code[rows] = labels.index(label)
    return code, labels


def _checks(lines: BatchLines, caps: Capacities) -> list[tuple[str, np.ndarray]]:
    """(reason, rows failing) in order. Prefill and decode rows are disjoint, so only the order
    within each stage matters."""
    stage = {"prefill": ~lines.decode, "decode": lines.decode}
    value = {n: lines.column(n)[0] for n in ("new_seq", "new_token", "cached_token", "running_req", "token")}
    out = [("interleaved lines", lines.interleaved)]
    for name, rows in stage.items():
        for n in CORE[name]:
            _, present, ok = lines.column(n)
            out += [(f"missing {_key(n)}", rows & ~present), (f"non-integer {_key(n)}", rows & present & ~ok)]
    out.append(("truncated line", lines.truncated))
    mixed, has_mixed, ok_mixed = lines.column("mixed")
    out.append(("impossible mixed #running-req", stage["prefill"] & has_mixed & ~(ok_mixed & (mixed >= 1))))
    out.append(("impossible value (#new-seq < 1, #new-token < #new-seq or #cached-token < 0)",
                stage["prefill"] & ((value["new_seq"] < 1) | (value["new_token"] < value["new_seq"])
                                    | (value["cached_token"] < 0))))
    out.append(("impossible value (#running-req < 1 or #token < #running-req)",
                stage["decode"] & ((value["running_req"] < 1) | (value["token"] < value["running_req"]))))
    for col, limit, label in _capacity_checks(caps):
        rows = stage["prefill" if col in CORE["prefill"] else "decode"]
        out.append((f"above startup capacity ({label}={limit})", rows & (value[col] > limit)))
    return out


def _capacity_checks(caps: Capacities):
    checks = []
    running = caps.limit("max_running_requests")
    if running:
        checks += [("new_seq", running, "max_running_requests"), ("running_req", running, "max_running_requests")]
    tokens = caps.limit("max_total_num_tokens")
    if tokens:
        checks.append(("token", tokens, "max_total_num_tokens"))
    chunk = caps.limit("chunked_prefill_size", "max_prefill_tokens")
    if chunk:
        checks.append(("new_token", chunk, "chunked_prefill_size"))
    return checks


def _key(name: str) -> str:
    return "#" + name.replace("_", "-")


def _drop_policy(lines: BatchLines, reason: np.ndarray, warmup_before: int | None, ranks: dict[str, str],
                 options: SGLangOptions, report: IngestReport) -> np.ndarray:
    """Rows kept after setting aside warm-up lines and other ranks' copies (not bad input:
    never --strict)."""
    keep = np.ones(len(lines), dtype=bool)
    if warmup_before is not None:
        warm = (lines.row < warmup_before) & (reason == 0)
        if warm.any():
            report.drop("warm-up batch before 'fired up'", int(warm.sum()))
        keep &= ~warm
    other = keep & ~_kept_tags(lines, keep, ranks, options)[lines.tag]
    if other.any():
        report.drop("another rank's copy of a batch line", int(other.sum()))
    return keep & ~other


def _kept_tags(lines: BatchLines, keep: np.ndarray, ranks: dict[str, str], options: SGLangOptions) -> np.ndarray:
    """Whether each of ``lines.tags`` is the rank kept: ``options.rank``, else the first tag seen
    per DP group (``ranks``, carried across chunks). A bracket that holds something other than
    rank tags counts as no tag."""
    if options.rank is not None:
        return np.array([t == options.rank.strip() for t in lines.tags], dtype=bool)
    names = [t if TAG.match(t) else "" for t in lines.tags]
    first = np.full(len(names), len(lines), dtype=np.int64)
    np.minimum.at(first, lines.tag[keep], np.flatnonzero(keep))
    for t in np.argsort(first, kind="stable")[:np.count_nonzero(first < len(lines))]:
        ranks.setdefault(_dp_group(names[t]), names[t])
    kept = set(ranks.values())
    return np.array([t in kept for t in names], dtype=bool)


def _dp_group(tag: str) -> str:
    m = re.search(r"\bDP(\d+)\b", tag)
    return m.group(1) if m else ""


def _record_skips(rows: np.ndarray, reason: np.ndarray, labels: list[str | None], chunk: Chunk, file: str,
                  report: IngestReport) -> None:
    bad = np.flatnonzero(reason)
    if not len(bad):
        return
    codes, first = np.unique(reason[bad], return_index=True)
    for code in codes[np.argsort(first)]:  # in order of first appearance
        group = rows[bad[reason[bad] == code]]
        samples = [(f"{file}:{chunk.first_line + r}", chunk.line(r)) for r in group[:3].tolist()]
        report.skip_many(labels[code], len(group), samples)


def _to_part(lines: BatchLines, good: np.ndarray, chunk: Chunk, index: int, options: SGLangOptions) -> dict[str, np.ndarray]:
    decode = lines.decode[good]
    value = {n: lines.column(n)[0][good] for n in ("new_seq", "new_token", "cached_token", "running_req", "token", "mixed")}
    return {
        "decode": decode.astype(np.int64),
        "batch_size": np.where(decode, value["running_req"], value["new_seq"]),
        "q_tokens": np.where(decode, value["running_req"], value["new_token"]),
        "kv_tokens": np.where(decode, value["token"], value["new_token"] + value["cached_token"]),
        "extra_tokens": np.where(decode, 0, value["mixed"]),
        "weight": np.where(decode, options.decode_log_interval, 1),
        "stamp": lines.stamp[good],
        "loc": lines.row[good] + ((index << LOC_BITS) + chunk.first_line),
    }
