"""Error records shared by validation, import and append: where a problem is and what it is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    table: str
    file: str
    row: int | None
    field: str
    message: str
    value: object = None

    def __str__(self) -> str:
        where = self.file + (f":{self.row}" if self.row is not None else "")
        val = "" if self.value is None else f" (value: {_short(self.value)})"
        return f"{where}: {self.table}.{self.field}: {self.message}{val}"


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DataError(ValueError):
    """Raised with every problem found, never just the first."""

    def __init__(self, problems: list[Problem], what: str = "invalid data"):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"{what}: {len(self.problems)} problem(s)\n{lines}{more}")
