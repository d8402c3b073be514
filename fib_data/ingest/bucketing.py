"""Shape bucketing applied to batches before they become workloads (``--bucketing``).

* ``exact``: shapes as observed (per-sequence lengths kept when the source has them).
* ``pow2``: batch size and the per-sequence query and KV lengths rounded up to powers of two
  (as engines bucket CUDA-graph batch sizes), so nearby shapes merge and weights add up.
* ``page``: batch size and query tokens exact; per-sequence KV lengths rounded up to a multiple
  of the page size (shapes that fill the same pages merge).

Rounding works on totals split evenly over the sequences, so it drops known per-sequence lengths.
The policy is recorded in every workload's ``bucketing`` column.
"""

from __future__ import annotations

import polars as pl

from .batches import FRAME_SCHEMA, merge_frames

POLICIES = ("exact", "pow2", "page")


def _pow2(expr: pl.Expr) -> pl.Expr:
    """Smallest power of two >= expr (expr >= 1)."""
    return (pl.lit(2, dtype=pl.Int64) ** (expr.cast(pl.Float64).log(2).ceil().cast(pl.Int64))).cast(pl.Int64)


def _ceil_div(a: pl.Expr, b: pl.Expr | int) -> pl.Expr:
    return (a + b - 1) // b


def bucket_frame(frame: pl.DataFrame, policy: str, page_size: int) -> pl.DataFrame:
    if policy not in POLICIES:
        raise ValueError(f"unknown bucketing {policy!r}; expected one of {', '.join(POLICIES)}")
    if policy == "exact" or frame.height == 0:
        return frame
    b, q, kv = pl.col("batch_size"), pl.col("q_tokens"), pl.col("kv_tokens")
    decode = pl.col("stage") == "decode"
    if policy == "pow2":
        nb = _pow2(b)
        q_per = pl.when(decode).then(1).otherwise(_pow2(_ceil_div(q, b)))
        kv_per = pl.max_horizontal(_pow2(_ceil_div(kv, b)), q_per)
        extra = pl.when(pl.col("extra_tokens") > 0).then(_pow2(pl.col("extra_tokens"))).otherwise(0)
        frame = frame.with_columns(batch_size=nb, q_tokens=nb * q_per, kv_tokens=nb * kv_per, extra_tokens=extra)
    else:
        kv_per = _ceil_div(_ceil_div(kv, b), page_size) * page_size
        frame = frame.with_columns(kv_tokens=b * kv_per)
    return merge_frames([frame.cast(FRAME_SCHEMA)])
