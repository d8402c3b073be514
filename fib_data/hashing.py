"""Content hashes that make rows comparable across runs and machines."""

from __future__ import annotations

import hashlib
import json
from typing import Any

_SOLUTION_CONTENT = ("definition", "language", "entry_point", "destination_passing_style",
                     "binding", "dependencies")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def solution_hash(row: dict[str, Any]) -> str:
    """Hash of what determines a solution's behaviour: its code and how it is called.

    Name, author and description are left out, so a renamed copy hashes the same.
    """
    content = {k: row.get(k) for k in _SOLUTION_CONTENT}
    content["dependencies"] = sorted(content.get("dependencies") or [])
    content["sources"] = sorted((s["path"], s["content"]) for s in row.get("sources") or [])
    return sha256_text(canonical_json(content))


def environment_hash(env: dict[str, Any]) -> str:
    env = dict(env)
    env["other_libs"] = sorted((l["name"], l["version"]) for l in env.get("other_libs") or [])
    return sha256_text(canonical_json(env))[:16]
