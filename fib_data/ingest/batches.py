"""The common currency of the log parsers and the simulator: one engine forward step.

A ``Batch`` says what an engine ran in one step: prefill (extend) or decode, how many sequences,
how many query tokens and how many KV tokens in total, and, when the source knows them, the
per-sequence lengths. Parsers that only see totals leave ``q_lens``/``kv_lens`` empty; the mapping
then splits totals evenly and records those axes as synthesized.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

STAGES = ("prefill", "decode")

#: Columns of a batch frame, the vectorised form of many Batches (one row per distinct shape).
FRAME_SCHEMA = {
    "stage": pl.String,
    "batch_size": pl.Int64,
    "q_tokens": pl.Int64,
    "kv_tokens": pl.Int64,
    "extra_tokens": pl.Int64,
    "weight": pl.Int64,
    "observed_at": pl.String,
    "where": pl.String,
}
SHAPE_COLUMNS = ["stage", "batch_size", "q_tokens", "kv_tokens", "extra_tokens"]


@dataclass(frozen=True)
class Batch:
    stage: str
    batch_size: int
    q_tokens: int
    kv_tokens: int
    weight: int = 1
    #: Decode rows riding in a mixed prefill step (SGLang --enable-mixed-chunk): dense-op M only.
    extra_tokens: int = 0
    q_lens: tuple[int, ...] | None = None
    kv_lens: tuple[int, ...] | None = None
    where: str = ""
    observed_at: datetime | None = None
    #: Batch fields read from the source, as opposed to modelled ("batch_size", "q_tokens", ...).
    measured: tuple[str, ...] = ("batch_size", "q_tokens", "kv_tokens")

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.batch_size < 1 or self.q_tokens < self.batch_size or self.kv_tokens < self.q_tokens:
            raise ValueError(f"impossible batch {self}")
        for lens, total in ((self.q_lens, self.q_tokens), (self.kv_lens, self.kv_tokens)):
            if lens is not None and (len(lens) != self.batch_size or sum(lens) != total):
                raise ValueError(f"per-sequence lengths disagree with the totals in {self}")


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=FRAME_SCHEMA)


def merge_frames(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """One row per distinct shape: weights summed, earliest time and first location kept."""
    if not frames:
        return empty_frame()
    frame = pl.concat([f.select(list(FRAME_SCHEMA)) for f in frames], how="vertical")
    return (frame.group_by(SHAPE_COLUMNS, maintain_order=True)
            .agg(pl.col("weight").sum(), pl.col("observed_at").min(), pl.col("where").first())
            .select(list(FRAME_SCHEMA)))


def frame_to_batches(frame: pl.DataFrame, measured: tuple[str, ...]) -> list[Batch]:
    out = []
    for row in frame.iter_rows(named=True):
        seen = row["observed_at"]
        out.append(Batch(
            stage=row["stage"], batch_size=row["batch_size"], q_tokens=row["q_tokens"],
            kv_tokens=row["kv_tokens"], extra_tokens=row["extra_tokens"], weight=row["weight"],
            where=row["where"] or "", measured=measured,
            observed_at=datetime.fromisoformat(seen) if seen else None))
    return out
