"""Atomic file writes: write beside the target, fsync, then rename.

A reader never sees a half-written file, and a failed write leaves the old content in place.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
import threading
from typing import Iterator

_batch = threading.local()


@contextmanager
def one_sync() -> Iterator[None]:
    """Inside this block atomic writes skip their own fsync; one ``os.sync()`` at the end makes
    them all durable. For many small files written together (blobs of one ingest): a reader still
    never sees a half-written file (temp + rename), and what follows the block (the rows that name
    these files) is written only after they are on disk."""
    outer = getattr(_batch, "on", False)
    _batch.on = True
    try:
        yield
        if not outer:
            os.sync()
    finally:
        _batch.on = outer


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not getattr(_batch, "on", False):
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode())
