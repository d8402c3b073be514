"""Integers read straight from a byte buffer at given offsets, vectorised with numpy.

Polars pays ~0.2 us a row for a regex capture or a slice-and-split; reading ``key: 123`` as two
8-byte words after the key and working on all eight bytes at once (SWAR) costs a few gathers and
a dozen integer operations per value.
"""

from __future__ import annotations

import numpy as np

from .scan import words

_LEAD = 4  # at most 3 spaces before the digits (and a '-')
_DIGITS = 12  # counts in serving logs stay far below 10**12
_TERMINATORS = np.zeros(256, dtype=bool)
_TERMINATORS[np.frombuffer(b", \n)%", dtype=np.uint8)] = True


def _u64(x: int) -> np.uint64:
    return np.uint64(x)


_HIGH, _LOW7 = _u64(0x8080808080808080), _u64(0x7F7F7F7F7F7F7F7F)


def read_ints(buf: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, ok) of the integer at each offset of ``buf`` (up to 3 spaces and a '-' first).

    ``buf`` must hold at least 24 bytes after every offset (a chunk's padding gives that).
    ``ok`` is False where the text there is not an integer ended by ',', ' ', ')', '%' or the
    end of the line (``6.5``, ``abc``, an empty value), or has more than 12 digits; values are
    0 there.
    """
    if len(offsets) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    # Nearly every value is "key: 123" with fewer than 8 digits: one space, then digits and
    # their terminator in one word. The rest takes the general path.
    digits = words(buf)[offsets + 1]
    length = leading(digits ^ DIGIT_ZEROS, non_digits)
    ok = (buf[offsets] == ord(" ")) & (length > 0) & (length < 8) & _TERMINATORS[_byte(digits, np.minimum(length, 7))]
    values = eight_digits(digits, length)
    other = np.flatnonzero(~ok)
    if len(other):
        values[other], ok[other] = _read_ints(buf, offsets[other])
    return values, ok


def _read_ints(buf: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``read_ints`` for any text at the offsets."""
    w = words(buf)
    head = w[offsets]
    lead = leading(head ^ _u64(0x2020202020202020), nonzero_bytes)
    negative = _byte(head, np.minimum(lead, 7)) == ord("-")
    start = offsets + lead + negative
    first = w[start]
    length = leading(first ^ DIGIT_ZEROS, non_digits)
    after = _byte(first, np.minimum(length, 7))
    more = np.flatnonzero(length == 8)  # 8 digits or more: read on into the next word
    if len(more):
        second = w[start[more] + 8]
        length[more] += leading(second ^ DIGIT_ZEROS, non_digits)
        after[more] = buf[start[more] + np.minimum(length[more], _DIGITS)]
    ok = (lead < _LEAD) & (length > 0) & (length <= _DIGITS) & _TERMINATORS[after]
    values = eight_digits(first, np.minimum(length, 8))
    long = length[more] > 8
    if long.any():
        low = np.minimum(length[more][long], _DIGITS) - 8
        rows = more[long]
        values[rows] = values[rows] * 10 ** low + eight_digits(second[long], low)
    return np.where(ok, np.where(negative, -values, values), 0), ok


def _byte(word: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Byte ``index`` (0..7) of each little-endian word."""
    return ((word >> (index.astype(np.uint64) * _u64(8))) & _u64(0xFF)).astype(np.uint8)


DIGIT_ZEROS = _u64(0x3030303030303030)


def nonzero_bytes(t: np.ndarray) -> np.ndarray:
    """The high bit of each byte of ``t`` that is not zero."""
    return (((t & _LOW7) + _LOW7) | t) & _HIGH


def non_digits(t: np.ndarray) -> np.ndarray:
    """The high bit of each byte of ``t`` (a word XOR '0'*8) that was not an ASCII digit."""
    return (((t & _LOW7) + _u64(0x7676767676767676)) | t) & _HIGH


def leading(t: np.ndarray, flags) -> np.ndarray:
    """How many of the first (lowest) bytes of each word are unflagged (0..8)."""
    f = flags(t)
    lowest = f & (~f + _u64(1))
    return np.where(f == 0, 8, np.bitwise_count(lowest - _u64(1)) // 8).astype(np.int64)


def eight_digits(word: np.ndarray, count: np.ndarray | int) -> np.ndarray:
    """The number written by the first ``count`` (0..8, per word or for all) ASCII digits of
    each little-endian word.

    Shift the digits to the top of the word (the bytes below become leading zeros), then combine
    pairs of digits, pairs of pairs and so on with three multiplies.
    """
    if isinstance(count, int):  # one count for all: no per-word shift
        word = (word & _u64(0x0F0F0F0F0F0F0F0F)) << _u64(8 * (8 - count) % 64) if count else np.zeros_like(word)
    else:
        shift = (_u64(8) * (_u64(8) - count.astype(np.uint64))) % _u64(64)
        word = np.where(count > 0, (word & _u64(0x0F0F0F0F0F0F0F0F)) << shift, _u64(0))
    word = ((word * _u64(2561)) >> _u64(8)) & _u64(0x00FF00FF00FF00FF)
    word = ((word * _u64(6553601)) >> _u64(16)) & _u64(0x0000FFFF0000FFFF)
    return ((word * _u64(42949672960001)) >> _u64(32)).astype(np.int64)


_ONES = _u64(0x0101010101010101)


def equal_bytes(word: np.ndarray, byte: int) -> np.ndarray:
    """The high bit of each byte of ``word`` that equals ``byte`` (exact: no false positives)."""
    return ~nonzero_bytes(word ^ (_ONES * _u64(byte))) & _HIGH


def last_flagged(flags: np.ndarray) -> np.ndarray:
    """Index (0..7) of the last (highest) byte flagged in each word, -1 if none: spread each
    flag down to every lower byte, then count the flagged bytes."""
    flags = flags | (flags >> _u64(8))
    flags |= flags >> _u64(16)
    flags |= flags >> _u64(32)
    return np.bitwise_count(flags).astype(np.int64) - 1
