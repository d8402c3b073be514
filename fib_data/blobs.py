"""Content-addressed store of safetensors files: ``blobs/<sha[:2]>/<sha>.safetensors``.

The address is the sha256 of the file's bytes, so writing the same tensors twice stores them once,
and every read re-hashes what it got.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Mapping

from . import atomic

_SHA = re.compile(r"^[0-9a-f]{64}$")


class BlobError(ValueError):
    pass


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serialize(tensors: Mapping[str, Any]) -> bytes:
    """safetensors bytes for numpy arrays or torch tensors (torch only imported if given one)."""
    values = list(tensors.values())
    if values and type(values[0]).__module__.startswith("torch"):
        from safetensors.torch import save

        return save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    from safetensors.numpy import save

    return save(dict(tensors))


class BlobStore:
    def __init__(self, root: str | Path, remote=None):
        self.root = Path(root)
        #: ``fetch(sha, path)`` that downloads a blob missing here. A folder made by ``fib pull``
        #: gets one (see fib_data.hub.RemoteBlobs); ``remote=False`` turns it off.
        self.remote = _pulled_from(self.root.parent) if remote is None else remote

    def path_for(self, sha: str) -> Path:
        if not _SHA.match(sha or ""):
            raise BlobError(f"not a sha256 hex digest: {sha!r}")
        return self.root / sha[:2] / f"{sha}.safetensors"

    def exists(self, sha: str) -> bool:
        return self.path_for(sha).is_file()

    def put_bytes(self, data: bytes) -> str:
        _check_safetensors_header(data)
        sha = sha256_bytes(data)
        path = self.path_for(sha)
        # A file of the wrong size is what a crash before a deferred sync can leave: rewrite it.
        if not path.exists() or path.stat().st_size != len(data):
            atomic.write_bytes(path, data)
        return sha

    def put(self, tensors: Mapping[str, Any]) -> str:
        return self.put_bytes(serialize(tensors))

    def get_bytes(self, sha: str) -> bytes:
        path = self.path_for(sha)
        if not path.is_file() and self.remote:
            self.remote(sha, path)
        if not path.is_file():
            raise BlobError(f"blob {sha} is missing ({path})")
        data = path.read_bytes()
        actual = sha256_bytes(data)
        if actual != sha:
            raise BlobError(f"blob {path} is corrupt: its sha256 is {actual}")
        return data

    def load(self, sha: str, framework: str = "numpy", device: str = "cpu") -> dict[str, Any]:
        data = self.get_bytes(sha)
        if framework == "torch":
            from safetensors.torch import load

            return {k: v.to(device) for k, v in load(data).items()}
        from safetensors.numpy import load

        return load(data)

    def keys(self, sha: str) -> list[str]:
        import json
        import struct

        data = self.get_bytes(sha)
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
        return [k for k in header if k != "__metadata__"]

    def verify(self, sha: str) -> None:
        self.get_bytes(sha)

    def all(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*/*.safetensors"))


def _pulled_from(folder: Path):
    from .hub import RemoteBlobs

    return RemoteBlobs.of_folder(folder)


def _check_safetensors_header(data: bytes) -> None:
    import json
    import struct

    if len(data) < 8:
        raise BlobError("not a safetensors file: shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise BlobError("not a safetensors file: header length past the end of the data")
    try:
        json.loads(data[8 : 8 + n])
    except ValueError as exc:
        raise BlobError(f"not a safetensors file: bad header ({exc})") from None
