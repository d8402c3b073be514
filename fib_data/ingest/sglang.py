"""SGLang scheduler logs: ``Prefill batch`` / ``Decode batch`` lines -> a batch frame.

Fields are read by name (``#new-seq: 2``), never by position, so every drift variant parses:
``.`` or ``,`` after "batch", ``Prefill batch(mixed #running-req: N).``, optional ``cache hit
rate``, ``cuda graph``, ``timestamp``, ``#pending-token``, ``full/swa token usage``,
``#full token`` for ``#token``, rank tags (``TP0``, ``DP0 TP0 EP0``, ``PP0 ATTN_CP0 TP0``) and any
prefix before the anchor (docker, k8s). Parsing is vectorised over chunks of bytes with no Python
object per line: plain ASCII chunks are read in place with numpy (anchors and keys found by byte
scans, ``scan.py``; numbers read eight digits at a time, ``fields.py``; the few rows fixed windows
cannot settle go through exact per-row checks), other chunks through polars string ops on the
lines. Shapes are merged with a sort every few chunks, so memory stays bounded by the chunk size
and the number of distinct shapes.

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

from .batches import FRAME_SCHEMA, empty_frame
from .fields import DIGIT_ZEROS, eight_digits, leading, non_digits, read_ints
from .lines import CHUNK_BYTES, Chunk, iter_chunks
from .report import IngestReport
from .scan import find_all, first_per_line, matches, positions, starts_with, windows, words

DEFAULT_DECODE_LOG_INTERVAL = 40  # sglang ServerArgs.decode_log_interval

# "#token:" cannot match inside "#new-token:"/"#cached-token:" (the "#" comes first there).
FIELDS = {
    "new_seq": "#new-seq:",
    "new_token": "#new-token:",
    "cached_token": "#cached-token:",
    "running_req": "#running-req:",
    "token": "#token:",
    "full_token": "#full token:",
}
_KEYS = [*FIELDS, "mixed"]  # mixed: the "#running-req:" inside "Prefill batch(mixed #running-req: N)"
_VALUES = ["new_seq", "new_token", "cached_token", "running_req", "token", "mixed"]
_KEY_BYTES = np.array([len(FIELDS.get(k, FIELDS["running_req"])) for k in _KEYS])
CORE = {"prefill": ("new_seq", "new_token", "cached_token"), "decode": ("running_req", "token")}
_STAMP = r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d$"
_TAG = re.compile(r"^(?:[A-Z][A-Z_]*\d+ ?)*$")
_CAPACITY = re.compile(r"\b(max_total_num_tokens|chunked_prefill_size|max_prefill_tokens|"
                       r"max_running_requests|context_len)=(-?\d+)")
# A cut line ends in a separator, or its last segment is a key with no ": value".
_TRUNCATED = r"(?:[,:]\s*$)|(?:,\s*[^,:]*$)"
_FIRED_UP = b"The server is fired up"
_MERGE_EVERY = 4
_SPECULATIVE = ("sglang: speculative decoding lines (accept len) mapped with one query token per request; "
                "draft tokens per step are not logged")
_TAIL = 24  # bytes of a line's end that decide _TRUNCATED without the regex
_TAG_BYTES = 32  # longer rank tags are decoded one by one
_HEAD = 48  # bytes at a line's start searched for its "[20" stamp (past them: the whole line)
# Shapes are merged every few chunks as integer columns (the stage a flag, the first line and the
# earliest time numbers); the strings of FRAME_SCHEMA are made once, at the end.
_SHAPE = ["decode", "batch_size", "q_tokens", "kv_tokens", "extra_tokens"]
_PART = [*_SHAPE, "weight", "stamp", "loc"]
_EMPTY = {c: np.zeros(0, dtype=np.int64) for c in _PART}
_NONE = np.iinfo(np.int64).max  # no time / no key in the line
_SHAPE_MIX = np.random.default_rng(1).integers(1, 2**63, size=len(_SHAPE), dtype=np.uint64) | np.uint64(1)
_LOC_BITS = 40  # loc = file index << 40 | line number


@dataclass
class Capacities:
    """Startup limits printed by SGLang; values above them are impossible."""
    values: dict[str, int] = field(default_factory=dict)

    def update_from(self, data: bytes) -> None:
        key = b"max_total_num_tokens="
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
    frames = []
    for index, path in enumerate(paths):
        caps = Capacities()
        ranks: dict[str, str] = {}
        for chunk in iter_chunks(path, options.chunk_bytes):
            report.lines_read += chunk.n_lines
            caps.update_from(chunk.data)
            frame = _parse_chunk(chunk, str(path), index, caps, ranks, options, report)
            if len(frame["loc"]):
                frames.append(frame)
            if len(frames) > _MERGE_EVERY:
                frames = [_merge(frames)]  # keeps memory bounded by the distinct shapes
    if frames:
        report.note(f"sglang: decode lines weighted x{options.decode_log_interval} "
                    f"(--decode-log-interval); decode KV totals are #token, an upper bound")
    return _finish(_merge(frames), paths)


def _parse_chunk(chunk: Chunk, file: str, index: int, caps: Capacities, ranks: dict[str, str],
                 options: SGLangOptions, report: IngestReport) -> dict[str, np.ndarray]:
    df = _byte_columns(chunk) if chunk.plain else _text_columns(chunk)
    if not df.height:
        return _EMPTY
    report.batches_found += df.height
    if _SPECULATIVE not in report.notes and _speculative(chunk, df):
        report.note(_SPECULATIVE)
    # Only what the policy and the shapes need moves on (filters copy every column).
    df = df.select("row", "decode", "tags", "stamp", *_VALUES,
                   pl.when(pl.col("decode")).then(_reason("decode", caps)).otherwise(_reason("prefill", caps)).alias("reason"))
    warmup_before = _fired_up_row(chunk) if chunk.first_line == 1 else None
    df = _drop_policy(df, warmup_before, ranks, options, report)
    _record_skips(df, chunk, file, report)
    return _to_frame(df.filter(pl.col("reason").is_null()), chunk, index, options)


def _byte_columns(chunk: Chunk) -> pl.DataFrame:
    """The batch lines' columns read from the bytes with numpy (plain ASCII chunks)."""
    buf, ends, starts = chunk.buf, chunk.ends, chunk.starts
    w = words(buf)
    anchors = find_all(buf, w, b" batch", scan_at=1)
    if not len(anchors):
        return pl.DataFrame()
    lines = np.searchsorted(ends, anchors)
    first = np.flatnonzero(np.r_[True, lines[1:] != lines[:-1]])
    decode = np.logical_or.reduceat(matches(w, anchors - 6, b"Decode"), first)
    keep = decode | np.logical_or.reduceat(matches(w, anchors - 7, b"Prefill"), first)
    rows, decode = lines[first][keep], decode[keep]
    at = anchors[first][keep] - starts[rows]
    cols = {"row": rows, "decode": decode, "anchors": np.diff(np.r_[first, len(lines)])[keep],
            "truncated": _truncated(chunk, rows)}
    cols.update(_stamps(chunk, w, rows, at, decode))
    cols.update(_field_columns(chunk, w, rows))
    df = pl.DataFrame(cols)
    return df.with_columns(pl.when(f"ok_{n}").then(n).alias(n) for n in _KEYS).drop(
        f"ok_{n}" for n in _KEYS).pipe(_merge_token)


def _field_columns(chunk: Chunk, w: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """``has_<name>``, ``<name>`` and ``ok_<name>`` of every field on each row, read after the
    first occurrence of its key in the line; all keys come from one pass over the '#' bytes."""
    hashes = positions(chunk.buf, ord("#"))
    head = w[hashes]
    spots, codes = [], []
    for code, (name, key) in enumerate(FIELDS.items()):
        found = hashes[starts_with(head, key.encode()[:8])]
        if len(key) > 8:
            found = found[matches(w, found + 8, key.encode()[8:])]
        spots.append(found)
        codes.append(np.full(len(found), code))
        if name == "running_req":
            mixed = found[matches(w, found - 7, b"(mixed ")]
            spots.append(mixed)
            codes.append(np.full(len(mixed), _KEYS.index("mixed")))
    spots, codes = np.concatenate(spots), np.concatenate(codes)
    row_of_line = np.full(len(chunk.ends), -1, dtype=np.int64)
    row_of_line[rows] = np.arange(len(rows))
    at_row = row_of_line[np.searchsorted(chunk.ends, spots)]
    keep = at_row >= 0
    # Offset of each value: the first key occurrence per (key, row), past the key.
    first = np.full(len(_KEYS) * len(rows), _NONE, dtype=np.int64)
    np.minimum.at(first, (codes * len(rows) + at_row)[keep], (spots + _KEY_BYTES[codes])[keep])
    first = first.reshape(len(_KEYS), len(rows))
    present = first != _NONE
    values = np.zeros(first.shape, dtype=np.int64)
    ok = np.zeros(first.shape, dtype=bool)
    values[present], ok[present] = read_ints(chunk.buf, first[present])
    cols = {}
    for i, name in enumerate(_KEYS):
        cols.update({f"has_{name}": present[i], name: values[i], f"ok_{name}": ok[i]})
    return cols


def _truncated(chunk: Chunk, rows: np.ndarray) -> np.ndarray:
    """``_TRUNCATED`` on each row, read from the last ``_TAIL`` bytes of the line.

    Rows the tail cannot decide (trailing whitespace, no ',' or ':' in a longer line's tail)
    go through the regex itself.
    """
    starts, ends = chunk.starts[rows], chunk.ends[rows]
    base = np.maximum(ends - _TAIL, 0)
    tail = windows(chunk.buf, base, _TAIL)
    before = np.minimum(starts - base, _TAIL)  # columns of the window before the line (negative: none)
    comma, colon = _last_column(tail, ord(",")), _last_column(tail, ord(":"))
    has_comma, has_colon = (comma >= 0) & (comma >= before), (colon >= 0) & (colon >= before)
    last = chunk.buf[ends - 1]
    out = (last == ord(",")) | (last == ord(":")) | (has_comma & ~(has_colon & (colon > comma)))
    unsure = (last <= 32) | (~has_comma & ~has_colon & (base > starts))
    if unsure.any():
        texts = pl.Series([chunk.line(r) for r in rows[unsure]], dtype=pl.String)
        out[unsure] = texts.str.contains(_TRUNCATED).to_numpy()
    return out


_COLUMNS = np.arange(1, _TAIL + 1, dtype=np.uint8)


def _last_column(tail: np.ndarray, byte: int) -> np.ndarray:
    """Column of the last ``byte`` in each row of ``tail`` (-1 if none)."""
    return ((tail == byte) * _COLUMNS).max(axis=1).astype(np.int64) - 1


def _stamps(chunk: Chunk, w: np.ndarray, rows: np.ndarray, at: np.ndarray, decode: np.ndarray) -> dict:
    """``stamp`` (YYYYMMDDHHMMSS of the first ``[20..`` stamp, null if none or malformed) and
    ``tags`` (the rank tags between the stamp and the anchor)."""
    starts = chunk.starts[rows]
    where = _first_stamp(chunk, w, rows)
    found = where >= 0
    text = np.empty((len(rows), 3), dtype=np.uint64)
    at_text = np.where(found, where + 1, 0)
    text[:, 0], text[:, 1], text[:, 2] = w[at_text], w[at_text + 8], w[at_text + 16]
    text = text.view(np.uint8)
    date = np.ascontiguousarray(text[:, [0, 1, 2, 3, 5, 6, 8, 9]]).view(np.uint64).ravel()
    clock = np.ascontiguousarray(text[:, [11, 12, 14, 15, 17, 18, 18, 18]]).view(np.uint64).ravel()
    ok = found & (leading(date ^ DIGIT_ZEROS, non_digits) == 8) & (leading(clock ^ DIGIT_ZEROS, non_digits) == 8)
    ok &= (text[:, 4] == ord("-")) & (text[:, 7] == ord("-")) & (text[:, 13] == ord(":")) & (text[:, 16] == ord(":"))
    ok &= (text[:, 10] == ord(" ")) | (text[:, 10] == ord("T"))
    stamp = eight_digits(date, np.full(len(rows), 8)) * 1_000_000 + eight_digits(clock, np.full(len(rows), 6))
    start = where + 21
    length = np.where(found, np.clip(at + starts - np.where(decode, 8, 9) - start, 0, None), 0)
    return {"stamp": pl.Series(stamp).set(pl.Series(~ok), None), "tags": _tags(chunk, start, length)}


def _first_stamp(chunk: Chunk, w: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Offset of the first ``[20`` in each row (-1 if none): at the line start, else searched in
    the line's first ``_HEAD`` bytes, else in the whole line."""
    starts, ends = chunk.starts[rows], chunk.ends[rows]
    where = np.where(starts_with(w[starts], b"[20"), starts, -1)
    todo = np.flatnonzero(where < 0)
    head = windows(chunk.buf, starts[todo], _HEAD)
    hit = (head[:, :-2] == ord("[")) & (head[:, 1:-1] == ord("2")) & (head[:, 2:] == ord("0"))
    column = np.argmax(hit, axis=1)
    inside = hit[np.arange(len(todo)), column] & (starts[todo] + column < ends[todo])
    where[todo[inside]] = starts[todo[inside]] + column[inside]
    rest = todo[~inside & (ends[todo] - starts[todo] > _HEAD - 2)]
    if len(rest) > 1000:
        found = find_all(chunk.buf, w, b"[20")
        where[rest] = first_per_line(found, np.searchsorted(chunk.ends, found), len(chunk.ends))[rows[rest]]
    else:
        where[rest] = [chunk.data.find(b"[20", s, e) for s, e in zip(starts[rest], ends[rest])]
    return where


def _tags(chunk: Chunk, start: np.ndarray, length: np.ndarray) -> pl.Series:
    """The bytes ``[start, start + length)`` of each row as strings, decoded once per distinct one."""
    width = min(_TAG_BYTES, -(-int(length.max(initial=0)) // 8) * 8) or 8
    text = windows(chunk.buf, np.where(length > 0, start, 0), width).view(np.uint64)
    kept = np.clip(length[:, None] - np.arange(0, width, 8), 0, 8).astype(np.uint64)  # bytes of each word
    text &= np.where(kept == 8, np.uint64(2**64 - 1), (np.uint64(1) << (np.uint64(8) * kept)) - np.uint64(1))
    first, inverse = _distinct_rows(text @ _TAG_MIX[:width // 8])
    if not (text[first[inverse]] == text).all():  # a hash collision: compare whole windows
        _, first, inverse = np.unique(text.view(f"V{width}").ravel(), return_index=True, return_inverse=True)
    names = pl.Series([bytes(text[i]).rstrip(b"\0").decode() for i in first], dtype=pl.String)
    tags = names.gather(inverse.ravel())
    long = np.flatnonzero(length > width)
    if len(long):
        tags = tags.scatter(long, [chunk.data[s:s + n].decode() for s, n in zip(start[long], length[long])])
    return tags


def _distinct_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct key, index of each row's key): a chunk has few rank tags,
    so a pass per distinct value beats sorting; many distinct values fall back to a sort."""
    inverse = np.full(len(key), -1, dtype=np.int64)
    first: list[int] = []
    todo = 0
    while todo < len(key) and len(first) < 16:
        inverse[key == key[todo]] = len(first)
        first.append(todo)
        left = np.flatnonzero(inverse < 0)
        todo = left[0] if len(left) else len(key)
    if todo < len(key):
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return first, inverse.ravel()
    return np.array(first, dtype=np.int64), inverse


_TAG_MIX = np.random.default_rng(0).integers(1, 2**63, size=_TAG_BYTES // 8, dtype=np.uint64) | np.uint64(1)


def _text_columns(chunk: Chunk) -> pl.DataFrame:
    """The same columns from the polars lines: the exact path for chunks that are not plain ASCII."""
    df = pl.DataFrame({"text": chunk.lines}).with_row_index("row")
    text = pl.col("text")
    df = df.with_columns(text.str.find(" batch", literal=True).alias("at"),
                         text.str.contains("Decode batch", literal=True).alias("decode"))
    df = df.filter(pl.col("decode") | (pl.col("at").is_not_null() & text.str.contains("Prefill batch", literal=True)))
    df = df.with_columns(
        text.str.count_matches(" batch", literal=True).alias("anchors"),
        text.str.contains(_TRUNCATED).alias("truncated"),
        text.str.find("[20", literal=True).alias("stamp_at"),
    ).with_columns(_rank_tag().alias("tags"), _stamp_value().alias("stamp"))
    fields = [_raw_field(key, ")" if name == "mixed" else ",").cast(pl.Int64, strict=False).alias(name)
              for name, key in {**FIELDS, "mixed": "(mixed #running-req:"}.items()]
    present = [text.str.contains(key, literal=True).alias(f"has_{name}")
               for name, key in {**FIELDS, "mixed": "(mixed #running-req:"}.items()]
    return df.with_columns(*fields, *present).drop("text", "at", "stamp_at").pipe(_merge_token)


def _merge_token(df: pl.DataFrame) -> pl.DataFrame:
    """``#full token`` (hybrid models) stands in for ``#token`` when that is absent."""
    use_full = ~pl.col("has_token") & pl.col("has_full_token")
    return df.with_columns(pl.when(use_full).then(pl.col("full_token")).otherwise(pl.col("token")).alias("token"),
                           (pl.col("has_token") | pl.col("has_full_token")).alias("has_token"),
                           ).drop("full_token", "has_full_token")


def _raw_field(key: str, end: str = ",") -> pl.Expr:
    """The text after ``key`` up to ``end`` (stripped), or null when the key is absent."""
    text = pl.col("text")
    start = text.str.find(key, literal=True) + len(key)
    return text.str.slice(start, 24).str.split_exact(end, 1).struct.field("field_0").str.strip_chars()


def _rank_tag() -> pl.Expr:
    """The tags between ``[YYYY-MM-DD HH:MM:SS`` and ``] Prefill|Decode batch`` ("" if none)."""
    start = pl.col("stamp_at") + 21
    stop = pl.col("at") - pl.when(pl.col("decode")).then(6).otherwise(7) - 2
    return pl.col("text").str.slice(start, (stop - start).clip(lower_bound=0)).fill_null("")


def _stamp_value() -> pl.Expr:
    stamp = pl.col("text").str.slice(pl.col("stamp_at") + 1, 19)
    return pl.when(stamp.str.contains(_STAMP)).then(stamp.str.replace_all(r"\D", "").cast(pl.Int64))


def _speculative(chunk: Chunk, df: pl.DataFrame) -> bool:
    key = b"accept len:"
    if key not in chunk.data:
        return False
    if not chunk.plain:
        return bool(chunk.lines.gather(df.filter("decode")["row"]).str.contains(key.decode(), literal=True).any())
    lines = np.searchsorted(chunk.ends, find_all(chunk.buf, words(chunk.buf), key))
    return bool(np.isin(lines, df.filter("decode")["row"].to_numpy()).any())


def _fired_up_row(chunk: Chunk) -> int | None:
    at = chunk.data.find(_FIRED_UP)
    return chunk.row_of(at) if at >= 0 else None


def _reason(stage: str, caps: Capacities) -> pl.Expr:
    """Why a batch line is unusable, or null. Checked in order; the first reason wins."""
    expr = pl.when(pl.col("anchors") > 1).then(pl.lit("interleaved lines"))
    for n in CORE[stage]:
        expr = expr.when(~pl.col(f"has_{n}")).then(pl.lit(f"missing {_key(n)}"))
        expr = expr.when(pl.col(n).is_null()).then(pl.lit(f"non-integer {_key(n)}"))
    expr = expr.when(pl.col("truncated")).then(pl.lit("truncated line"))
    if stage == "prefill":
        expr = expr.when(pl.col("has_mixed") & ~(pl.col("mixed") >= 1).fill_null(False)).then(
            pl.lit("impossible mixed #running-req"))
        expr = expr.when((pl.col("new_seq") < 1) | (pl.col("new_token") < pl.col("new_seq"))
                         | (pl.col("cached_token") < 0)).then(
            pl.lit("impossible value (#new-seq < 1, #new-token < #new-seq or #cached-token < 0)"))
    else:
        expr = expr.when((pl.col("running_req") < 1) | (pl.col("token") < pl.col("running_req"))).then(
            pl.lit("impossible value (#running-req < 1 or #token < #running-req)"))
    for col, limit, label in _capacity_checks(caps):
        if col in CORE[stage]:
            expr = expr.when(pl.col(col) > limit).then(pl.lit(f"above startup capacity ({label}={limit})"))
    return expr.otherwise(pl.lit(None, dtype=pl.String))


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


def _drop_policy(df: pl.DataFrame, warmup_before: int | None, ranks: dict[str, str],
                 options: SGLangOptions, report: IngestReport) -> pl.DataFrame:
    """Mark warm-up lines and other ranks' copies as dropped (not bad input: never --strict)."""
    if warmup_before is not None:
        warm = (pl.col("row") < warmup_before) & pl.col("reason").is_null()
        n = df.filter(warm).height
        if n:
            report.drop("warm-up batch before 'fired up'", n)
        df = df.filter(~warm)
    if options.rank is not None:
        keep = [options.rank.strip()]
    else:
        tags = df.get_column("tags").unique(maintain_order=True).to_list()
        # A bracket that holds something other than rank tags counts as no tag.
        odd = [t for t in tags if not _TAG.match(t)]
        if odd:
            df = df.with_columns(pl.when(pl.col("tags").is_in(odd)).then(pl.lit("")).otherwise("tags").alias("tags"))
        for tag in tags:
            ranks.setdefault(_dp_group(tag), tag) if tag not in odd else ranks.setdefault("", "")
        keep = list(ranks.values())
    other = ~pl.col("tags").is_in(keep)
    n = df.filter(other).height
    if n:
        report.drop("another rank's copy of a batch line", n)
    return df.filter(~other)


def _dp_group(tag: str) -> str:
    m = re.search(r"\bDP(\d+)\b", tag)
    return m.group(1) if m else ""


def _record_skips(df: pl.DataFrame, chunk: Chunk, file: str, report: IngestReport) -> None:
    bad = df.filter(pl.col("reason").is_not_null())
    if not bad.height:
        return
    for (reason,), group in bad.group_by("reason", maintain_order=True):
        rows = group.get_column("row").head(3)
        samples = [(f"{file}:{chunk.first_line + r}", chunk.line(r)) for r in rows.to_list()]
        report.skip_many(reason, group.height, samples)


def _to_frame(good: pl.DataFrame, chunk: Chunk, index: int, options: SGLangOptions) -> dict[str, np.ndarray]:
    prefill = ~pl.col("decode")
    frame = good.select(
        pl.col("decode").cast(pl.Int64),
        pl.when(prefill).then(pl.col("new_seq")).otherwise(pl.col("running_req")).alias("batch_size"),
        pl.when(prefill).then(pl.col("new_token")).otherwise(pl.col("running_req")).alias("q_tokens"),
        pl.when(prefill).then(pl.col("new_token") + pl.col("cached_token")).otherwise(pl.col("token")).alias("kv_tokens"),
        pl.when(prefill).then(pl.col("mixed").fill_null(0)).otherwise(0).alias("extra_tokens"),
        pl.when(prefill).then(1).otherwise(options.decode_log_interval).alias("weight"),
        pl.col("stamp").fill_null(_NONE),
        pl.col("row") + ((index << _LOC_BITS) + chunk.first_line),
    )
    return {c: s.to_numpy().astype(np.int64, copy=False) for c, s in zip(_PART, frame.get_columns())}


def _merge(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One row per distinct shape: weights summed, earliest time and first line kept."""
    if not parts:
        return _EMPTY
    cols = {c: np.concatenate([p[c] for p in parts]) for c in _PART} if len(parts) > 1 else parts[0]
    # Sort by a hash of the five numbers (one word: a fast sort), then check the runs exactly.
    key = sum(cols[c].view(np.uint64) * m for c, m in zip(_SHAPE, _SHAPE_MIX))
    order = np.argsort(key)
    key = key[order]
    new = np.empty(len(key), dtype=bool)
    new[:1] = True
    new[1:] = key[1:] != key[:-1]
    if not np.array_equal(new, _runs(cols, order)):  # a hash collision
        order = np.lexsort([cols[c] for c in reversed(_SHAPE)])
        new = _runs(cols, order)
    runs = np.flatnonzero(new)
    out = {c: cols[c][order[runs]] for c in _SHAPE}
    out["weight"] = np.add.reduceat(cols["weight"][order], runs)
    out["stamp"] = np.minimum.reduceat(cols["stamp"][order], runs)
    out["loc"] = np.minimum.reduceat(cols["loc"][order], runs)
    return out


def _runs(cols: dict[str, np.ndarray], order: np.ndarray) -> np.ndarray:
    """Where, in ``order``, the shape differs from the row before."""
    new = np.zeros(len(order), dtype=bool)
    new[:1] = True
    for c in _SHAPE:
        col = cols[c][order]
        new[1:] |= col[1:] != col[:-1]
    return new


def _finish(part: dict[str, np.ndarray], paths: list[Path]) -> pl.DataFrame:
    """The merged shapes as a batch frame (FRAME_SCHEMA), in order of first appearance."""
    if not len(part["loc"]):
        return empty_frame()
    order = np.argsort(part["loc"], kind="stable")
    part = {c: v[order] for c, v in part.items()}
    loc = pl.Series(part["loc"])
    where = (pl.Series([f"{p}:" for p in paths]).gather(loc // (1 << _LOC_BITS))
             + (loc % (1 << _LOC_BITS)).cast(pl.String))
    # Few distinct seconds: format each once.
    stamps, inverse = np.unique(part["stamp"], return_inverse=True)
    observed = pl.Series([_iso(int(t)) for t in stamps], dtype=pl.String).gather(inverse.ravel())
    return pl.DataFrame({
        "stage": pl.Series(part["decode"].astype(bool)).replace_strict({True: "decode", False: "prefill"}),
        **{c: part[c] for c in _SHAPE[1:]}, "weight": part["weight"], "observed_at": observed, "where": where,
    }).select(list(FRAME_SCHEMA)).cast(FRAME_SCHEMA)


def _iso(stamp: int) -> str | None:
    if stamp == _NONE:
        return None
    t = f"{stamp:014d}"
    return f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:]}"
