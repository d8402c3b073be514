"""Blobs named by workloads exist, match their hash, and hold the tensor_key asked for."""

from __future__ import annotations

from ..blobs import BlobError
from ..errors import Problem
from ..interop.blob_inputs import safetensors_keys
from .context import Context


def check(ctx: Context) -> list[Problem]:
    problems = []
    keys_of: dict[str, list[str] | str] = {}
    for row in ctx.workloads:
        for inp in row.data["inputs"]:
            sha = inp["sha256"]
            if inp["type"] != "safetensors" or not sha:
                continue
            if sha not in keys_of:
                keys_of[sha] = _keys(ctx, sha)
            found = keys_of[sha]
            fld = f"inputs.{inp['name']}"
            if isinstance(found, str):
                problems.append(row.problem(fld + ".sha256", found, sha))
            elif inp["tensor_key"] not in found:
                problems.append(row.problem(fld + ".tensor_key",
                                            f"not in blob {sha[:12]} (has {', '.join(found)})",
                                            inp["tensor_key"]))
    return problems


def _keys(ctx: Context, sha: str) -> list[str] | str:
    try:
        data = ctx.ds.blobs.get_bytes(sha)  # re-hashes the bytes
    except BlobError as exc:
        return str(exc)
    keys = safetensors_keys(data)
    return "blob is not a safetensors file" if keys is None else keys
