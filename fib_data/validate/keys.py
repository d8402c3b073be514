"""Every key unique within its table, across all part files."""

from __future__ import annotations

from ..errors import Problem
from ..schema import KEYS
from .loading import Row


class KeyCheck:
    def __init__(self, table: str):
        self.table = table
        self.columns = KEYS[table]
        self.seen: dict[tuple, str] = {}

    def row(self, row: Row) -> list[Problem]:
        key = tuple(row.data[c] for c in self.columns)
        first = self.seen.get(key)
        if first is None:
            self.seen[key] = f"{row.file}:{row.index}"
            return []
        return [row.problem("+".join(self.columns), f"duplicate key (first at {first})",
                            key[0] if len(key) == 1 else key)]


def check(rows: list[Row]) -> list[Problem]:
    if not rows:
        return []
    keys = KeyCheck(rows[0].table)
    return [p for r in rows for p in keys.row(r)]
