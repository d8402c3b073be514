"""SGLang batch lines read with polars string ops: the exact path for chunks that are not plain
ASCII (CRLF, UTF-8, NUL garbage), where byte offsets do not map onto lines. Slower than
``sglang_bytes`` but the reference the byte path is tested against.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .lines import Chunk
from .sglang_format import FIELDS, MIXED, NO_STAMP, STAMP, TRUNCATED, VALUES, BatchLines

_KEYS = {**FIELDS, "mixed": MIXED}


def batch_lines(chunk: Chunk) -> BatchLines | None:
    df = pl.DataFrame({"text": chunk.lines}).with_row_index("row")
    text = pl.col("text")
    df = df.with_columns(text.str.find(" batch", literal=True).alias("at"),
                         text.str.contains("Decode batch", literal=True).alias("decode"))
    df = df.filter(pl.col("decode") | (pl.col("at").is_not_null() & text.str.contains("Prefill batch", literal=True)))
    if not df.height:
        return None
    df = df.with_columns(
        text.str.count_matches(" batch", literal=True).alias("anchors"),
        text.str.contains(TRUNCATED).alias("truncated"),
        text.str.find("[20", literal=True).alias("stamp_at"),
    ).with_columns(_rank_tag().alias("tags"), _stamp_value().alias("stamp"))
    fields = [_raw_field(key, ")" if name == "mixed" else ",").cast(pl.Int64, strict=False).alias(name)
              for name, key in _KEYS.items()]
    present = [text.str.contains(key, literal=True).alias(f"has_{name}") for name, key in _KEYS.items()]
    df = df.with_columns(*fields, *present).drop("text", "at", "stamp_at").pipe(_merge_token)
    return _to_batch_lines(df)


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
    return pl.when(stamp.str.contains(STAMP)).then(stamp.str.replace_all(r"\D", "").cast(pl.Int64))


def _to_batch_lines(df: pl.DataFrame) -> BatchLines:
    tags = df.get_column("tags")
    names = tags.unique(maintain_order=True)
    return BatchLines(
        row=df["row"].cast(pl.Int64).to_numpy(), decode=df["decode"].to_numpy(),
        interleaved=(df["anchors"] > 1).to_numpy(), truncated=df["truncated"].to_numpy(),
        stamp=df["stamp"].fill_null(NO_STAMP).to_numpy(),
        tag=tags.replace_strict(names, pl.int_range(len(names), eager=True)).cast(pl.Int64).to_numpy(),
        tags=names.to_list(),
        values=np.stack([df[n].fill_null(0).to_numpy() for n in VALUES]),
        present=np.stack([df[f"has_{n}"].to_numpy() for n in VALUES]),
        ok=np.stack([df[n].is_not_null().to_numpy() for n in VALUES]),
    )
