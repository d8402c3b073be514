"""Paths that become files somewhere cannot leave their folder: solution source paths (written
into a build folder) and blob addresses (which name files under blobs/)."""

from __future__ import annotations

import re

from ..errors import Problem
from ..interop.blob_inputs import escapes
from .context import Context

_SHA = re.compile(r"^[0-9a-f]{64}$")


def check(ctx: Context) -> list[Problem]:
    problems = []
    for row in ctx.solutions:
        seen = set()
        for src in row.data["sources"]:
            path = src["path"]
            if not path or escapes(path):
                problems.append(row.problem("sources.path", "must be a relative path inside the "
                                            "solution (no leading /, no ..)", path))
            if path in seen:
                problems.append(row.problem("sources.path", "source path given twice", path))
            seen.add(path)
    for row in ctx.workloads:
        for inp in row.data["inputs"]:
            sha = inp["sha256"]
            if sha is not None and not _SHA.match(sha):
                problems.append(row.problem(f"inputs.{inp['name']}.sha256",
                                            "not a sha256 hex digest, so not a blob address", sha))
    return problems
