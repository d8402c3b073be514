"""Distinct batch shapes with summed weights, gathered a chunk at a time (for ``sglang.py``).

A part is a dict of int64 columns (``PART``): the shape (decode flag, batch size, q/kv tokens,
extra tokens), its weight, earliest time and first line. ``Shapes`` keeps the distinct shapes
seen so far sorted by a one-word key; a log repeats its shapes, so most rows of a new part are
added to a known shape by a lookup of their key, and only the new shapes wait for a sort. Memory
stays bounded by the number of distinct shapes; the strings of FRAME_SCHEMA are made once, at
the end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from .batches import FRAME_SCHEMA, empty_frame
from .scan import run_starts
from .sglang_format import NO_STAMP

SHAPE = ["decode", "batch_size", "q_tokens", "kv_tokens", "extra_tokens"]
PART = [*SHAPE, "weight", "stamp", "loc"]
EMPTY = {c: np.zeros(0, dtype=np.int64) for c in PART}
LOC_BITS = 40  # loc = file index << 40 | line number
_MERGE_ROWS = 1 << 20
# An exact key packs the five numbers into these bit fields (63 bits: the top bit stays clear),
# so equal keys are equal shapes. Rows whose numbers do not fit get a hash with the top bit set
# instead, and rows with equal hashed keys are compared column by column.
_BITS = {"decode": 1, "batch_size": 12, "q_tokens": 15, "kv_tokens": 24, "extra_tokens": 11}
_HASHED = np.uint64(1 << 63)
_MIX = np.random.default_rng(1).integers(1, 2**63, size=len(SHAPE), dtype=np.uint64) | np.uint64(1)


class Shapes:
    def __init__(self):
        self.known = merge([])
        self.new: list[dict[str, np.ndarray]] = []
        self.new_rows = 0

    def add(self, part: dict[str, np.ndarray]) -> None:
        part = absorb(self.known, part)
        if len(part["loc"]):
            self.new.append(part)
            self.new_rows += len(part["loc"])
        # New shapes are sorted in once they are as many as the known ones (so that sorting
        # costs a bounded amount per row), and at least _MERGE_ROWS.
        if self.new_rows > max(_MERGE_ROWS, len(self.known["loc"])):
            self.known, self.new, self.new_rows = merge([self.known, *self.new]), [], 0

    def result(self) -> dict[str, np.ndarray]:
        self.known, self.new, self.new_rows = merge([self.known, *self.new]), [], 0
        return self.known


def shape_key(part: dict[str, np.ndarray]) -> np.ndarray:
    """One uint64 per row: the exact packed key where the shape fits ``_BITS``, else a hash."""
    key = np.zeros(len(part["loc"]), dtype=np.uint64)
    shift = 0
    for c, bits in _BITS.items():
        key |= part[c].view(np.uint64) << np.uint64(shift)
        shift += bits
    big = [c for c, bits in _BITS.items() if len(key) and not 0 <= part[c].min() <= part[c].max() < 1 << bits]
    if big:
        fits = np.logical_and.reduce([(part[c] >= 0) & (part[c] < 1 << _BITS[c]) for c in big])
        hashed = sum(part[c].view(np.uint64) * m for c, m in zip(SHAPE, _MIX)) | _HASHED
        key = np.where(fits, key, hashed)
    return key


def absorb(known: dict[str, np.ndarray], part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add the rows of ``part`` whose shape ``known`` holds to it, in place, and return the
    others. The part's keys are sorted first, so the lookups walk ``known`` forwards."""
    if not len(known["loc"]) or not len(part["loc"]):
        return part
    key = shape_key(part)
    order = np.argsort(key)
    key = key[order]
    at = np.searchsorted(known["key"], key).clip(max=len(known["key"]) - 1)
    same = known["key"][at] == key
    hashed = np.flatnonzero(same & (key >= _HASHED))
    if len(hashed):  # equal hashes must be equal shapes too
        for c in SHAPE:
            same[hashed] &= known[c][at[hashed]] == part[c][order[hashed]]
    rows, at = order[same], at[same]
    # Rows of one shape are adjacent (sorted keys): sum them first, then update each shape once.
    first = run_starts(at)
    at = at[first]
    known["weight"][at] += np.add.reduceat(part["weight"][rows], first)
    known["stamp"][at] = np.minimum(known["stamp"][at], np.minimum.reduceat(part["stamp"][rows], first))
    # "loc" stays: parts come in file order, so the shape's first line is already known.
    rest = np.ones(len(key), dtype=bool)
    rest[rows] = False
    return {c: part[c][rest] for c in PART}


def merge(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One row per distinct shape, sorted by ``key`` (``shape_key``): weights summed, earliest
    time and first line kept."""
    parts = [p for p in parts if len(p["loc"])]
    if not parts:
        return {**EMPTY, "key": np.zeros(0, dtype=np.uint64)}
    cols = {c: np.concatenate([p[c] for p in parts]) for c in PART} if len(parts) > 1 else parts[0]
    key = shape_key(cols)
    order = np.argsort(key)
    key = key[order]
    new = np.empty(len(key), dtype=bool)
    new[:1] = True
    new[1:] = key[1:] != key[:-1]
    hashed = np.searchsorted(key, _HASHED)  # hashed keys sort last; only their runs need a check
    collision = hashed < len(key) and not np.array_equal(new[hashed:], _runs(cols, order[hashed:]))
    if collision:
        order = np.lexsort([cols[c] for c in reversed(SHAPE)])
        new = _runs(cols, order)
    runs = np.flatnonzero(new)
    out = {c: cols[c][order[runs]] for c in SHAPE}
    out["weight"] = np.add.reduceat(cols["weight"][order], runs)
    out["stamp"] = np.minimum.reduceat(cols["stamp"][order], runs)
    out["loc"] = np.minimum.reduceat(cols["loc"][order], runs)
    if not collision:
        out["key"] = key[runs]
        return out
    # Back to key order for absorb (shapes sharing a hashed key stay apart: never absorbed).
    out["key"] = shape_key(out)
    order = np.argsort(out["key"], kind="stable")
    return {c: v[order] for c, v in out.items()}


def _runs(cols: dict[str, np.ndarray], order: np.ndarray) -> np.ndarray:
    """Where, in ``order``, the shape differs from the row before."""
    new = np.zeros(len(order), dtype=bool)
    new[:1] = True
    for c in SHAPE:
        col = cols[c][order]
        new[1:] |= col[1:] != col[:-1]
    return new


def to_frame(shapes: dict[str, np.ndarray], paths: list[Path]) -> pl.DataFrame:
    """The merged shapes as a batch frame (FRAME_SCHEMA), in order of first appearance."""
    if not len(shapes["loc"]):
        return empty_frame()
    order = np.argsort(shapes["loc"], kind="stable")
    shapes = {c: shapes[c][order] for c in PART}
    loc = pl.Series(shapes["loc"])
    where = (pl.Series([f"{p}:" for p in paths]).gather(loc // (1 << LOC_BITS))
             + (loc % (1 << LOC_BITS)).cast(pl.String))
    # Few distinct seconds: format each once.
    stamps, inverse = np.unique(shapes["stamp"], return_inverse=True)
    observed = pl.Series([_iso(int(t)) for t in stamps], dtype=pl.String).gather(inverse.ravel())
    return pl.DataFrame({
        "stage": pl.Series(shapes["decode"].astype(bool)).replace_strict({True: "decode", False: "prefill"}),
        **{c: shapes[c] for c in SHAPE[1:]}, "weight": shapes["weight"], "observed_at": observed, "where": where,
    }).select(list(FRAME_SCHEMA)).cast(FRAME_SCHEMA)


def _iso(stamp: int) -> str | None:
    if stamp == NO_STAMP:
        return None
    t = f"{stamp:014d}"
    return f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:]}"
