"""Stored content hashes match what they hash (a stale hash breaks evaluation keys)."""

from __future__ import annotations

from ..errors import Problem
from ..hashing import environment_hash, solution_hash
from .loading import Row


def solutions(rows: list[Row]) -> list[Problem]:
    problems = []
    for r in rows:
        expected = solution_hash(r.data)
        if r.data["content_hash"] != expected:
            problems.append(r.problem("content_hash",
                                      f"does not match the content (expected {expected})",
                                      r.data["content_hash"]))
    return problems


def evaluation(row: Row) -> list[Problem]:
    expected = environment_hash(row.data["environment"])
    if row.data["environment_hash"] == expected:
        return []
    return [row.problem("environment_hash", f"does not match environment (expected {expected})",
                        row.data["environment_hash"])]
