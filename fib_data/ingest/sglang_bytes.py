"""SGLang batch lines read in place from a plain ASCII chunk with numpy: the fast path.

One pass over the chunk finds every newline, '#', 'b' and '[' (``positions_of``). The line of
each hit is a running count of newlines; batch anchors (" batch"), field keys ("#new-seq:") and
stamps ("[20") are the hits whose next bytes match, checked on 8-byte words read at them.
Numbers are read eight digits at a time (``fields.py``). No Python object is made per line: the
few rows that fixed windows cannot settle (a very long rank tag, a line whose tail has no ',' or
':') go through exact per-row checks.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .fields import DIGIT_ZEROS, eight_digits, equal_bytes, last_flagged, non_digits, read_ints
from .lines import Chunk
from .scan import matches, positions_of, run_starts, starts_with, words
from .sglang_format import FIELDS, NO_STAMP, TRUNCATED, VALUES, BatchLines

_SCAN = b"\n#b["
_NL, _HASH, _B, _BRACKET = _SCAN
_TAG_BYTES = 32  # longer rank tags are decoded one by one
_TAIL = 16  # bytes of a line's end that decide TRUNCATED without the regex


def batch_lines(chunk: Chunk) -> BatchLines | None:
    buf = chunk.buf
    w = words(buf)
    hits = positions_of(chunk.data, _SCAN)
    found = buf[hits]
    line = np.cumsum(found == _NL)  # a hit's line: the newlines before it (newlines aside)
    hit = _by_byte(hits, line, found)
    chunk.ends = hit[_NL][0]  # the scan found them anyway (Chunk caches them)
    anchors = _anchors(w, hit[_B][0] - 1, hit[_B][1])
    if anchors is None:
        return None
    rows, decode, interleaved, at = anchors
    row_of_line = np.full(len(chunk.ends), -1, dtype=np.int64)  # -1: not a batch line
    row_of_line[rows] = np.arange(len(rows))
    offsets = _field_offsets(w, hit[_HASH][0], row_of_line[hit[_HASH][1]], len(rows))
    stamp_at = _stamp_offsets(w, hit[_BRACKET][0], row_of_line[hit[_BRACKET][1]], len(rows))
    tag, tags = _tag_ids(chunk, w, stamp_at, at, decode)
    values, present, ok = _values(buf, offsets, decode)
    return BatchLines(row=rows, decode=decode, interleaved=interleaved, truncated=_truncated(chunk, w, rows),
                      stamp=_stamp_values(w, stamp_at), tag=tag, tags=tags, values=values, present=present, ok=ok)


def _by_byte(hits: np.ndarray, line: np.ndarray, found: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(offsets, lines) of the hits of each scanned byte, in file order: one stable sort by byte
    (a radix sort for uint8) and slices, cheaper than a mask and two selections per byte."""
    order = np.argsort(found, kind="stable")
    hits, line = hits[order], line[order]
    count = np.bincount(found, minlength=256)
    stop = np.cumsum(count)
    start = stop - count
    return {byte: (hits[start[byte]:stop[byte]], line[start[byte]:stop[byte]]) for byte in _SCAN}


def _anchors(w: np.ndarray, at: np.ndarray, line: np.ndarray):
    """(rows, decode, interleaved, offset of the first " batch") of the lines holding a
    ``Decode batch`` or ``Prefill batch``, from the offsets of the spaces before each 'b'."""
    real = matches(w, at, b" batch")
    at, line = at[real], line[real]
    if not len(at):
        return None
    first = run_starts(line)
    decode = np.logical_or.reduceat(matches(w, at - 6, b"Decode"), first)
    keep = decode | np.logical_or.reduceat(matches(w, at - 7, b"Prefill"), first)
    count = np.diff(np.r_[first, len(at)])
    return line[first][keep], decode[keep], count[keep] > 1, at[first][keep]


# Keys are told apart by their first 7 bytes ("#token:" has only 7): a multiply-shift hash of
# those indexes a 16-slot table (the multiplier is picked so that no two keys share a slot),
# then the head and the rest of the key are compared with the table's.
_KEYS = [key.encode() for key in FIELDS.values()]
_HEAD_MASK = np.uint64(2**56 - 1)
_HEADS = np.array([int.from_bytes(k[:7], "little") for k in _KEYS], dtype=np.uint64)


def _multiplier(heads: np.ndarray) -> np.uint64:
    rng = np.random.default_rng(0)
    while True:
        mult = rng.integers(1, 2**63, dtype=np.uint64) | np.uint64(1)
        if len(set(((heads * mult) >> np.uint64(60)).tolist())) == len(heads):
            return mult


_MULT = _multiplier(_HEADS)
_TABLE_HEAD = np.zeros(16, dtype=np.uint64)  # an empty slot holds 0, which no '#...' head is
_TABLE_CODE = np.zeros(16, dtype=np.int64)
_TABLE_HEAD[(_HEADS * _MULT) >> np.uint64(60)] = _HEADS
_TABLE_CODE[(_HEADS * _MULT) >> np.uint64(60)] = np.arange(len(_KEYS))
_REST_WANT = np.array([int.from_bytes(k[7:], "little") for k in _KEYS], dtype=np.uint64)
_REST_MASK = np.array([2 ** (8 * len(k[7:])) - 1 for k in _KEYS], dtype=np.uint64)
_KEY_LEN = np.array([len(k) for k in _KEYS])
_CODE = {name: i for i, name in enumerate([*FIELDS, "mixed"])}
_NONE = np.iinfo(np.int64).max


def _field_offsets(w: np.ndarray, at: np.ndarray, row: np.ndarray, n: int) -> np.ndarray:
    """Offset of the value after the first occurrence of each key (rows of ``_CODE``) in each of
    the ``n`` rows, ``_NONE`` where the key is absent; ``at`` are '#' offsets, ``row`` their
    rows (-1: not a batch line)."""
    head = w[at] & _HEAD_MASK
    slot = (head * _MULT) >> np.uint64(60)
    code = _TABLE_CODE[slot]
    key = (_TABLE_HEAD[slot] == head) & ((w[at + 7] & _REST_MASK[code]) == _REST_WANT[code]) & (row >= 0)
    running = np.flatnonzero(key & (code == _CODE["running_req"]))
    mixed = running[matches(w, at[running] - 7, b"(mixed ")]
    unused = len(_CODE) * n  # one slot past the table takes the '#'s that are no key (as _NONE)
    slots = np.concatenate([np.where(key, code * n + row, unused), _CODE["mixed"] * n + row[mixed]])
    value_at = np.where(key, at + _KEY_LEN[code], _NONE)
    value_at = np.concatenate([value_at, value_at[mixed]])
    first = np.full(unused + 1, _NONE, dtype=np.int64)
    # A key twice in a line is rare: plain assignment, then a fix-up of the slots it touched
    # (whichever write won, the minimum over the losers and the winner is the first).
    first[slots] = value_at
    lost = first[slots] != value_at
    np.minimum.at(first, slots[lost], value_at[lost])
    return first[:unused].reshape(len(_CODE), n)


# The values the checks and the shapes read: the others stay unread ("present", not "ok").
_READ = {"decode": ("running_req", "token"), "prefill": ("new_seq", "new_token", "cached_token", "mixed")}


def _values(buf: np.ndarray, first: np.ndarray, decode: np.ndarray):
    """``values``/``present``/``ok`` of ``BatchLines`` from the value offsets (``_field_offsets``);
    ``#full token`` stands in for a missing ``#token``."""
    at = {name: first[_CODE[name]] for name in VALUES}
    at["token"] = np.where(at["token"] != _NONE, at["token"], first[_CODE["full_token"]])
    present = np.stack([at[name] != _NONE for name in VALUES])
    values = np.zeros(present.shape, dtype=np.int64)
    ok = np.zeros(present.shape, dtype=bool)
    rows = {"decode": np.flatnonzero(decode), "prefill": np.flatnonzero(~decode)}
    jobs = [(VALUES.index(name), rows[stage]) for stage, names in _READ.items() for name in names]
    offsets = np.concatenate([at[VALUES[i]][r] for i, r in jobs])
    got, good = read_ints(buf, np.where(offsets != _NONE, offsets, 0))
    good &= offsets != _NONE
    start = 0
    for i, r in jobs:
        values[i, r], ok[i, r] = got[start:start + len(r)], good[start:start + len(r)]
        start += len(r)
    return values, present, ok


def _stamp_offsets(w: np.ndarray, at: np.ndarray, row: np.ndarray, n: int) -> np.ndarray:
    """Offset of the first ``[20`` in each row (-1 if none), from '[' offsets and their rows
    (-1: not a batch line)."""
    stamp = starts_with(w[at], b"[20") & (row >= 0)
    at, row = at[stamp], row[stamp]
    first = run_starts(row)
    out = np.full(n, -1, dtype=np.int64)
    out[row[first]] = at[first]
    return out


def _u64(x: int) -> np.uint64:
    return np.uint64(x)


def _stamp_values(w: np.ndarray, at: np.ndarray) -> np.ndarray:
    """YYYYMMDDHHMMSS of ``[YYYY-MM-DD HH:MM:SS`` (or ``T`` for the space) at each offset,
    ``NO_STAMP`` where there is none or it is malformed. The 19 bytes are three words: A =
    "YYYY-MM-", B = "DD HH:MM", C = ":SS"; the digits are moved into a date and a clock word."""
    found = at >= 0
    safe = np.where(found, at + 1, 0)
    a, b, c = w[safe], w[safe + 8], w[safe + 16]
    date = (a & _u64(0xFFFFFFFF)) | ((a >> _u64(8)) & _u64(0xFFFF00000000)) | (b << _u64(48))
    clock = (((b >> _u64(24)) & _u64(0xFFFF)) | ((b >> _u64(32)) & _u64(0xFFFF0000))
             | ((c << _u64(24)) & _u64(0xFFFF00000000)))
    gap = (b >> _u64(16)) & _u64(0xFF)
    ok = (found & (non_digits(date ^ DIGIT_ZEROS) == 0) & (non_digits(clock ^ DIGIT_ZEROS) & _SIX_BYTES == 0)
          & ((a & _u64(0xFF0000FF00000000)) == _u64(0x2D00002D00000000))
          & ((b & _u64(0xFF0000000000)) == _u64(ord(":") << 40)) & ((c & _u64(0xFF)) == ord(":"))
          & ((gap == ord(" ")) | (gap == ord("T"))))
    return np.where(ok, eight_digits(date, 8) * 1_000_000 + eight_digits(clock, 6), NO_STAMP)


_SIX_BYTES = _u64(2**48 - 1)


def _tag_ids(chunk: Chunk, w: np.ndarray, stamp_at: np.ndarray, at: np.ndarray, decode: np.ndarray):
    """(index into the distinct tags, the distinct tags) of the rank tags between the stamp and
    ``] Decode|Prefill batch`` ("" without a stamp). A chunk holds few distinct tags: each is
    decoded once, told apart by a hash of its (at most ``_TAG_BYTES``) bytes."""
    start = stamp_at + 21
    length = np.where(stamp_at >= 0, np.clip(at - np.where(decode, 8, 9) - start, 0, None), 0)
    safe = np.where(length > 0, start, 0)
    width = min(_TAG_BYTES, -(-int(length.max(initial=0)) // 8) * 8)
    text = [w[safe + i] & _LOW_BYTES[np.clip(length - i, 0, 8)] for i in range(0, width, 8)]
    key = np.zeros(len(at), dtype=np.uint64)
    for part, mix in zip(text, _TAG_MIX):
        key += part * mix
    first, inverse = _distinct_rows(key)
    if any((part[first[inverse]] != part).any() for part in text):  # a hash collision
        _, first, inverse = np.unique(np.stack(text, axis=1), axis=0, return_index=True,
                                      return_inverse=True)
        inverse = inverse.ravel()
    names = [b"".join(part[i].tobytes() for part in text).rstrip(b"\0").decode() for i in first]
    long = np.flatnonzero(length > width)
    if len(long):
        index = {name: i for i, name in enumerate(names)}
        for r in long:
            name = chunk.data[start[r]:start[r] + length[r]].decode()
            inverse[r] = index.setdefault(name, len(index))
        names = list(index)
    return inverse, names


_LOW_BYTES = np.array([2 ** (8 * k) - 1 for k in range(9)], dtype=np.uint64)  # keeps the first k bytes
_TAG_MIX = np.random.default_rng(0).integers(1, 2**63, size=_TAG_BYTES // 8, dtype=np.uint64) | np.uint64(1)


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


def _truncated(chunk: Chunk, w: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``TRUNCATED`` on each row: the line's last non-blank byte is ',' or ':', or its last ','
    comes after its last ':'. Read from the last ``_TAIL`` bytes; rows they cannot settle
    (trailing blanks, a short line, no ',' or ':' in a longer line's tail) go through the regex."""
    ends = chunk.ends[rows]
    size = ends - chunk.starts[rows]
    base = np.maximum(ends - _TAIL, 0)
    low, high = w[base], w[base + 8]
    comma = _last_in(low, high, ord(","))
    colon = _last_in(low, high, ord(":"))
    last = chunk.buf[ends - 1]
    out = (last == ord(",")) | (last == ord(":")) | ((comma >= 0) & (colon < comma))
    unsure = (last <= 32) | (size < _TAIL) | ((comma < 0) & (colon < 0) & (size > _TAIL))
    if unsure.any():
        texts = pl.Series([chunk.line(r) for r in rows[unsure]], dtype=pl.String)
        out[unsure] = texts.str.contains(TRUNCATED).to_numpy()
    return out


def _last_in(low: np.ndarray, high: np.ndarray, byte: int) -> np.ndarray:
    """Index (0..15) of the last ``byte`` in the two words, -1 if none."""
    in_high = last_flagged(equal_bytes(high, byte))
    return np.where(in_high >= 0, in_high + 8, last_flagged(equal_bytes(low, byte)))
