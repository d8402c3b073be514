"""Safetensors inputs of an upstream folder: ``path`` + ``tensor_key`` -> a blob sha256."""

from __future__ import annotations

import json
import struct
from pathlib import Path, PurePosixPath

from ..blobs import sha256_bytes


def escapes(rel: str) -> bool:
    """True when a relative path could leave its folder (absolute, drive, or a ``..`` part)."""
    pure = PurePosixPath(rel.replace("\\", "/"))
    return pure.is_absolute() or ".." in pure.parts or (len(rel) > 1 and rel[1] == ":")


def safetensors_keys(data: bytes) -> list[str] | None:
    """Tensor names in a safetensors file, or None when the bytes are not one."""
    if len(data) < 8:
        return None
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError:
        return None
    return [k for k in header if k != "__metadata__"] if isinstance(header, dict) else None


class SourceBlobs:
    """Reads each referenced file once; remembers sha256 and tensor names per path."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, tuple[str, list[str]] | str] = {}  # path -> (sha, keys) | error
        self.by_sha: dict[str, Path] = {}

    def resolve(self, rel: str, tensor_key: str) -> tuple[str | None, str | None]:
        """(sha256, None) or (None, why not)."""
        if rel not in self.files:
            self.files[rel] = self._read(rel)
        found = self.files[rel]
        if isinstance(found, str):
            return None, found
        sha, keys = found
        if tensor_key not in keys:
            return None, f"tensor_key {tensor_key!r} not in {rel} (has {', '.join(keys)})"
        return sha, None

    def _read(self, rel: str) -> tuple[str, list[str]] | str:
        if escapes(rel):
            return f"blob path {rel!r} leaves the source folder"
        path = self.root / rel
        if not path.is_file():
            return f"blob file {rel} does not exist"
        data = path.read_bytes()
        keys = safetensors_keys(data)
        if keys is None:
            return f"{rel} is not a safetensors file"
        sha = sha256_bytes(data)
        self.by_sha[sha] = path
        return sha, keys
