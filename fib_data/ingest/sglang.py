"""SGLang scheduler logs: ``Prefill batch`` / ``Decode batch`` lines -> a batch frame.

Fields are read by name (``#new-seq: 2``), never by position, so every drift variant parses:
``.`` or ``,`` after "batch", ``Prefill batch(mixed #running-req: N).``, optional ``cache hit
rate``, ``cuda graph``, ``timestamp``, ``#pending-token``, ``full/swa token usage``,
``#full token`` for ``#token``, rank tags (``TP0``, ``DP0 TP0 EP0``, ``PP0 ATTN_CP0 TP0``) and any
prefix before the anchor (docker, k8s). Parsing is vectorised over chunks of lines: literal
searches in polars, the numbers read from the chunk's bytes with numpy (``fields.py``), one
group-by per chunk; memory stays bounded by the chunk size and the number of distinct shapes.

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

from .batches import FRAME_SCHEMA, SHAPE_COLUMNS, merge_frames
from .fields import read_ints
from .lines import CHUNK_BYTES, Chunk, iter_chunks
from .report import IngestReport

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
CORE = {"prefill": ("new_seq", "new_token", "cached_token"), "decode": ("running_req", "token")}
_STAMP = r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d$"
_TAG = re.compile(r"^(?:[A-Z][A-Z_]*\d+ ?)*$")
_CAPACITY = re.compile(r"\b(max_total_num_tokens|chunked_prefill_size|max_prefill_tokens|"
                       r"max_running_requests|context_len)=(-?\d+)")
# A cut line ends in a separator, or its last segment is a key with no ": value".
_TRUNCATED = r"(?:[,:]\s*$)|(?:,\s*[^,:]*$)"
_FIRED_UP = "The server is fired up"
_MERGE_EVERY = 4


@dataclass
class Capacities:
    """Startup limits printed by SGLang; values above them are impossible."""
    values: dict[str, int] = field(default_factory=dict)

    def update_from(self, lines: pl.Series) -> None:
        for text in lines.filter(lines.str.contains("max_total_num_tokens=", literal=True)).to_list():
            self.values.update({k: int(v) for k, v in _CAPACITY.findall(text)})

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
    for path in paths:
        caps = Capacities()
        ranks: dict[str, str] = {}
        for chunk in iter_chunks(path, options.chunk_bytes):
            report.lines_read += len(chunk.lines)
            caps.update_from(chunk.lines)
            frame = _parse_chunk(chunk, str(path), caps, ranks, options, report)
            if frame.height:
                frames.append(frame)
            if len(frames) >= _MERGE_EVERY:
                frames = [merge_frames(frames)]  # keeps memory bounded by the distinct shapes
    if frames:
        report.note(f"sglang: decode lines weighted x{options.decode_log_interval} "
                    f"(--decode-log-interval); decode KV totals are #token, an upper bound")
    return merge_frames(frames)


def _parse_chunk(chunk: Chunk, file: str, caps: Capacities, ranks: dict[str, str], options: SGLangOptions,
                 report: IngestReport) -> pl.DataFrame:
    df = pl.DataFrame({"text": chunk.lines}).with_row_index("row")
    warmup_before = _fired_up_row(df) if chunk.first_line == 1 else None
    text = pl.col("text")
    # Only literal searches per line in polars; numbers are read from the bytes with numpy
    # (fields.py): a regex capture costs ~0.2 us a row, which would cap throughput far below
    # 100 MB/s.
    df = df.with_columns(text.str.find(" batch", literal=True).alias("at"),
                         text.str.contains("Decode batch", literal=True).alias("decode"))
    df = df.filter(pl.col("decode") | (pl.col("at").is_not_null() & text.str.contains("Prefill batch", literal=True)))
    if not df.height:
        return pl.DataFrame(schema=FRAME_SCHEMA)
    report.batches_found += df.height
    df = df.with_columns(
        pl.when(pl.col("decode")).then(pl.lit("decode")).otherwise(pl.lit("prefill")).alias("stage"),
        text.str.count_matches(" batch", literal=True).alias("anchors"),
        text.str.contains(_TRUNCATED).alias("truncated"),
        text.str.find("[20", literal=True).alias("stamp_at"),
    ).with_columns(_rank_tag().alias("tags"))
    df = df.with_columns(_numeric_fields(df, chunk, {**FIELDS, "mixed": "(mixed #running-req:"}))
    if df.select((text.str.contains("accept len:", literal=True) & (pl.col("stage") == "decode")).any()).item():
        report.note("sglang: speculative decoding lines (accept len) mapped with one query token "
                    "per request; draft tokens per step are not logged")
    # From here on only numbers move; text is fetched back by row for the few lines reported.
    df = df.drop("text").with_columns(pl.when(pl.col("stage") == "prefill").then(_reason("prefill", caps))
                                      .otherwise(_reason("decode", caps)).alias("reason"))
    df = _drop_policy(df, warmup_before, ranks, options, report)
    _record_skips(df, chunk, file, report)
    return _to_frame(df.filter(pl.col("reason").is_null()), chunk, file, options)


def _numeric_fields(df: pl.DataFrame, chunk: Chunk, keys: dict[str, str]) -> list[pl.Series]:
    """For each field: ``has_<name>`` (key present) and ``<name>`` (its integer, null if not one)."""
    found = df.select(pl.col("text").str.find(key, literal=True).alias(name) for name, key in keys.items())
    rows = df.get_column("row").to_numpy()
    buf = np.frombuffer(chunk.data, dtype=np.uint8)
    out = []
    for name, key in keys.items():
        at = found.get_column(name)
        present = at.is_not_null().to_numpy()
        values = np.zeros(len(at), dtype=np.int64)
        ok = np.zeros(len(at), dtype=bool)
        if chunk.starts is not None:
            offsets = chunk.starts[rows[present]] + at.filter(at.is_not_null()).to_numpy() + len(key)
            values[present], ok[present] = read_ints(buf, offsets)
        else:
            raw = df.select(_raw_field(key, ")" if name == "mixed" else ",")).to_series()
            parsed = raw.cast(pl.Int64, strict=False)
            ok = parsed.is_not_null().to_numpy()
            values = parsed.fill_null(0).to_numpy()
        out.append(pl.Series(f"has_{name}", present))
        out.append(pl.Series(name, values).set(pl.Series(~ok), None) if (~ok).any() else pl.Series(name, values))
    return _merge_token(out)


def _merge_token(series: list[pl.Series]) -> list[pl.Series]:
    """``#full token`` (hybrid models) stands in for ``#token`` when that is absent."""
    cols = {s.name: s for s in series}
    use_full = ~cols["has_token"] & cols["has_full_token"]
    cols["has_token"] = cols["has_token"] | cols["has_full_token"]
    cols["token"] = pl.select(pl.when(use_full).then(cols["full_token"]).otherwise(cols["token"])).to_series().alias("token")
    return [s.alias(n) for n, s in cols.items() if not n.endswith("full_token")]


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


def _fired_up_row(df: pl.DataFrame) -> int | None:
    hit = df.filter(pl.col("text").str.contains(_FIRED_UP, literal=True))
    return int(hit["row"][0]) if hit.height else None


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
        samples = [(f"{file}:{chunk.first_line + r}", chunk.lines[r]) for r in rows.to_list()]
        report.skip_many(reason, group.height, samples)


def _to_frame(good: pl.DataFrame, chunk: Chunk, file: str, options: SGLangOptions) -> pl.DataFrame:
    is_prefill = pl.col("stage") == "prefill"
    frame = good.select(
        "stage",
        pl.when(is_prefill).then(pl.col("new_seq")).otherwise(pl.col("running_req")).alias("batch_size"),
        pl.when(is_prefill).then(pl.col("new_token")).otherwise(pl.col("running_req")).alias("q_tokens"),
        pl.when(is_prefill).then(pl.col("new_token") + pl.col("cached_token"))
        .otherwise(pl.col("token")).alias("kv_tokens"),
        pl.when(is_prefill).then(pl.col("mixed").fill_null(0)).otherwise(0).alias("extra_tokens"),
        pl.when(is_prefill).then(1).otherwise(options.decode_log_interval).cast(pl.Int64).alias("weight"),
        "row", "stamp_at",
    )
    # Only each distinct shape's first line needs its timestamp: group first, then read it.
    frame = (frame.group_by(SHAPE_COLUMNS, maintain_order=True)
             .agg(pl.col("weight").sum(), pl.col("row").first(), pl.col("stamp_at").first()))
    stamps = chunk.lines.gather(frame.get_column("row")).str.slice(frame.get_column("stamp_at") + 1, 19)
    return frame.with_columns(
        pl.when(stamps.str.contains(_STAMP)).then(stamps.str.replace(" ", "T", literal=True)).alias("observed_at"),
        (pl.lit(f"{file}:") + (pl.col("row") + chunk.first_line).cast(pl.String)).alias("where"),
    ).select(list(FRAME_SCHEMA)).cast(FRAME_SCHEMA)
