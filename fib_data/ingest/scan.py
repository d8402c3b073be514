"""Literal search over a chunk's raw bytes with numpy, with no Python object per line.

A literal is found by scanning for one of its bytes (``positions``, or ``positions_of`` for
several bytes in one pass) and checking the rest with 8-byte words read at every candidate
offset (an unaligned strided view: no copy). Results are byte offsets.
"""

from __future__ import annotations

import functools

import numpy as np


def positions(buf: np.ndarray, byte: int) -> np.ndarray:
    """Offsets of ``byte`` in ``buf``."""
    mask = _mask(len(buf))
    np.equal(buf, byte, out=mask)
    return np.flatnonzero(mask)


def positions_of(data: bytes | bytearray, wanted: bytes) -> np.ndarray:
    """Offsets of every byte of ``data`` that is one of ``wanted``. ``bytes.translate`` marks
    them all in one C loop, read back as bools: faster than a numpy compare (and an OR) per
    wanted byte."""
    marks = data.translate(_marker(wanted))
    return np.flatnonzero(np.frombuffer(marks, dtype=bool))


@functools.cache
def _marker(wanted: bytes) -> bytes:
    table = bytearray(256)
    for byte in wanted:
        table[byte] = 1
    return bytes(table)


_scratch = np.empty(0, dtype=bool)


def _mask(size: int) -> np.ndarray:
    """A chunk-sized bool array reused across calls: a fresh one costs a page fault per 4 KiB
    every time, about half a scan."""
    global _scratch
    if len(_scratch) < size:
        _scratch = np.empty(size, dtype=bool)
    return _scratch[:size]


def words(buf: np.ndarray) -> np.ndarray:
    """The little-endian uint64 starting at every byte offset of ``buf`` (last 7 excepted)."""
    return np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, offset=0, strides=(1,))


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


def has_pair(buf: np.ndarray, pair: bytes) -> bool:
    """Whether the two bytes of ``pair`` occur together anywhere in ``buf``: two uint16 compares
    (even and odd offsets), several times faster than ``bytes.find`` of a needle made of common
    letters. A cheap filter before that search."""
    want = int.from_bytes(pair, "little")
    even = buf[:len(buf) // 2 * 2].view(np.uint16)
    odd = buf[1:1 + (len(buf) - 1) // 2 * 2].view(np.uint16)
    return bool((even == want).any() or (odd == want).any())


def run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal neighbours starts in ``values`` (empty for an empty array)."""
    new = np.ones(len(values), dtype=bool)
    new[1:] = values[1:] != values[:-1]
    return np.flatnonzero(new)
