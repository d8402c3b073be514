"""Read a text file as polars string Series of lines, a bounded chunk at a time.

Lines are split in native code (polars' CSV reader), so a 1 GB log costs no Python object per
line, and memory is bounded by the chunk size.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from dataclasses import dataclass
from typing import IO, Iterator

import numpy as np

import polars as pl

CHUNK_BYTES = 32 << 20


def open_binary(path: str | Path) -> IO[bytes]:
    path = Path(path)
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


#: Spaces after the last newline of every chunk: room for fixed-size byte windows read past
#: the last line (fields.py), and read back as one extra blank line that is dropped.
PAD = 64


@dataclass
class Chunk:
    first_line: int  # 1-based number of the chunk's first line
    lines: pl.Series  # its lines, without newlines
    data: bytes  # the raw bytes the lines were cut from, followed by PAD spaces
    #: Byte offset of each line in ``data`` when lines map 1:1 onto the bytes (ASCII, no CR or
    #: NUL), else None. Lets numpy read fields straight from the bytes.
    starts: np.ndarray | None


def iter_chunks(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    first_line = 1
    rest = b""
    pad = b" " * PAD
    with open_binary(path) as fh:
        while True:
            block = fh.read(chunk_bytes)
            if not block:
                if rest:
                    yield _chunk(first_line, b"".join((rest, b"\n", pad)))
                return
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                rest += block
                continue
            chunk = _chunk(first_line, b"".join((rest, memoryview(block)[:cut], pad)))
            rest = block[cut:]
            yield chunk
            first_line += len(chunk.lines)


def iter_line_chunks(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, pl.Series]]:
    """Yield (1-based number of the chunk's first line, Series of its lines without newlines)."""
    for chunk in iter_chunks(path, chunk_bytes):
        yield chunk.first_line, chunk.lines


def _chunk(first_line: int, data: bytes) -> Chunk:
    lines = _lines(data)
    lines = lines.head(len(lines) - 1)  # the padding's blank line
    starts = None
    if data.isascii() and b"\r" not in data and b"\x00" not in data:
        lengths = lines.str.len_bytes().to_numpy().astype(np.int64) + 1
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
    return Chunk(first_line, lines, data, starts)


def _lines(data: bytes) -> pl.Series:
    """``data`` ends with a newline. Empty lines stay (as ""), so row i is line first+i."""
    # polars' CSV reader with a separator and quote that never occur splits lines in native
    # code; NUL bytes (garbage) cut a line, invalid UTF-8 becomes U+FFFD.
    frame = pl.read_csv(data, has_header=False, separator="\x00", quote_char=None, new_columns=["text"],
                        infer_schema=False, truncate_ragged_lines=True, encoding="utf8-lossy",
                        raise_if_empty=False)
    if frame.width == 0:
        return pl.Series("text", [], dtype=pl.String)
    return frame.get_column("text").fill_null("")
