"""Read a text file a bounded chunk of whole lines at a time.

A chunk keeps its raw bytes; parsers read them with numpy (``scan.py``) when they are plain ASCII,
and otherwise ask for the lines, split in native code (polars' CSV reader). Either way a 1 GB log
costs no Python object per line, and memory is bounded by the chunk size.
"""

from __future__ import annotations

import gzip
from functools import cached_property
from pathlib import Path
from typing import IO, Iterator

import numpy as np
import polars as pl

from .scan import positions

CHUNK_BYTES = 32 << 20


def open_binary(path: str | Path) -> IO[bytes]:
    path = Path(path)
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


#: Spaces after the last newline of every chunk (at least): room for fixed-size byte windows
#: read past the last line (scan.py, fields.py), and read back as one extra blank line that is
#: dropped.
PAD = 64


class Chunk:
    """A run of whole lines: raw bytes first; the polars lines are cut only when asked for."""

    def __init__(self, first_line: int, data: bytes):
        self.first_line = first_line  # 1-based number of the chunk's first line
        self.data = data  # the raw bytes (or bytearray), ending with a newline and >= PAD spaces

    @cached_property
    def plain(self) -> bool:
        """Lines map 1:1 onto the bytes (ASCII, no CR or NUL): numpy can read them in place."""
        data = self.data
        return data.isascii() and b"\r" not in data and b"\x00" not in data

    @cached_property
    def buf(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=np.uint8)

    @cached_property
    def ends(self) -> np.ndarray:
        """Byte offset of each line's newline."""
        return positions(self.buf, ord("\n"))

    @cached_property
    def starts(self) -> np.ndarray:
        starts = np.zeros(len(self.ends), dtype=np.int64)
        starts[1:] = self.ends[:-1] + 1
        return starts

    @cached_property
    def lines(self) -> pl.Series:
        """Its lines without newlines (row i is line first_line + i)."""
        lines = _lines(self.data)
        return lines.head(len(lines) - 1)  # the padding's blank line

    @property
    def n_lines(self) -> int:
        return len(self.ends) if self.plain else len(self.lines)

    def line(self, row: int) -> str:
        if self.plain:
            return self.data[self.starts[row]:self.ends[row]].decode()
        return self.lines[row]

    def row_of(self, offset: int) -> int:
        """The row holding byte ``offset``."""
        return self.data.count(b"\n", 0, offset)


def iter_chunks(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """The file as chunks of whole lines, each padded with spaces to a fixed size.

    One buffer serves every chunk (a fresh one per chunk costs a zero-fill and page faults,
    several times the read itself): a chunk's bytes are only valid until the next is asked for.
    """
    first_line = 1
    rest = b""
    data = bytearray(chunk_bytes + PAD)
    with open_binary(path) as fh:
        while True:
            if len(rest) + chunk_bytes + PAD > len(data):  # a line longer than a chunk
                data = bytearray(len(rest) + chunk_bytes + PAD)
            # Read straight after the carried-over partial line: no copy of the block.
            data[:len(rest)] = rest
            got = fh.readinto(memoryview(data)[len(rest):len(rest) + chunk_bytes])
            end = len(rest) + got
            if not got:
                if rest:
                    yield Chunk(first_line, bytes(rest) + b"\n" + b" " * PAD)
                return
            cut = data.rfind(b"\n", 0, end) + 1
            if cut == 0:
                rest = bytes(data[:end])
                continue
            rest = bytes(data[cut:end])
            data[cut:] = b" " * (len(data) - cut)  # same length: the buffer is never resized
            chunk = Chunk(first_line, data)
            yield chunk
            first_line += chunk.n_lines


def iter_line_chunks(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, pl.Series]]:
    """Yield (1-based number of the chunk's first line, Series of its lines without newlines)."""
    for chunk in iter_chunks(path, chunk_bytes):
        yield chunk.first_line, chunk.lines


def _lines(data: bytes) -> pl.Series:
    """``data`` ends with a newline. Empty lines stay (as ""), so row i is line first+i."""
    # polars' CSV reader with a separator and quote that never occur splits lines in native
    # code; NUL bytes (garbage) cut a line, invalid UTF-8 becomes U+FFFD.
    frame = pl.read_csv(bytes(data), has_header=False, separator="\x00", quote_char=None, new_columns=["text"],
                        infer_schema=False, truncate_ragged_lines=True, encoding="utf8-lossy",
                        raise_if_empty=False)
    if frame.width == 0:
        return pl.Series("text", [], dtype=pl.String)
    return frame.get_column("text").fill_null("")
