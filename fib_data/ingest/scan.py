"""Literal search over a chunk's raw bytes with numpy, with no Python object per line.

A literal is found by scanning for one of its bytes (``positions``) and checking the rest
with 8-byte words read at every candidate offset (an unaligned strided view: no copy). Results
are byte offsets; ``first_per_line`` turns them into one offset per line, the way ``str.find``
does on each line.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


_scratch = np.empty(0, dtype=bool)


def positions(buf: np.ndarray, byte: int) -> np.ndarray:
    """Offsets of ``byte`` in ``buf``. The chunk-sized mask is reused across calls: a fresh one
    costs a page fault per 4 KiB every time, about half the scan."""
    global _scratch
    if len(_scratch) < len(buf):
        _scratch = np.empty(len(buf), dtype=bool)
    mask = _scratch[:len(buf)]
    np.equal(buf, byte, out=mask)
    return np.flatnonzero(mask)


def words(buf: np.ndarray) -> np.ndarray:
    """The little-endian uint64 starting at every byte offset of ``buf`` (last 7 excepted)."""
    return np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, offset=0, strides=(1,))


def windows(buf: np.ndarray, offsets: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` bytes at each offset, one contiguous row each."""
    return sliding_window_view(buf, size)[offsets]


def matches(w: np.ndarray, offsets: np.ndarray, literal: bytes) -> np.ndarray:
    """Where ``literal`` occurs at ``offsets`` (negative offsets never match; the buffer must
    extend at least ``len(literal) + 8`` bytes past every offset)."""
    ok = offsets >= 0
    safe = np.maximum(offsets, 0)
    for i in range(0, len(literal), 8):
        ok &= starts_with(w[safe + i], literal[i:i + 8])
    return ok


def starts_with(got: np.ndarray, piece: bytes) -> np.ndarray:
    """Whether each word of ``got`` (read at some offset) begins with ``piece`` (at most 8 bytes)."""
    mask = np.uint64((1 << (8 * len(piece))) - 1)
    want = np.uint64(int.from_bytes(piece, "little"))
    return (got & mask) == want if len(piece) < 8 else got == want


def find_all(buf: np.ndarray, w: np.ndarray, literal: bytes, scan_at: int = 0) -> np.ndarray:
    """Offsets of every occurrence of ``literal``, found by scanning for ``literal[scan_at]``
    (pick a byte that is rare in the text)."""
    hits = positions(buf, literal[scan_at]) - scan_at
    return hits[matches(w, hits, literal)]


def first_per_line(offsets: np.ndarray, lines: np.ndarray, n_lines: int) -> np.ndarray:
    """For each line, the first of the sorted ``offsets`` in it (``lines`` gives their lines), or -1."""
    first = np.ones(len(lines), dtype=bool)
    first[1:] = lines[1:] != lines[:-1]
    out = np.full(n_lines, -1, dtype=np.int64)
    out[lines[first]] = offsets[first]
    return out
