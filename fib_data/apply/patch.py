"""Install wrappers on module attributes and class attributes, and put the originals back.

Undo restores the exact objects that were there: for a class, the raw ``__dict__`` entry (so a
``staticmethod`` stays one), and an attribute the class only inherited is deleted again rather
than set. Targets are dotted paths under a root module that the caller names or passes, so a
stand-in module can take flashinfer's place.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

_ABSENT = object()


def root_module(module: str | types.ModuleType) -> types.ModuleType:
    return importlib.import_module(module) if isinstance(module, str) else module


def resolve(root: types.ModuleType, path: str) -> tuple[Any, str, Any] | None:
    """(owner, attribute, current value) for ``path`` under ``root``; None when it is absent."""
    parts = path.split(".")
    owner: Any = root
    for i, part in enumerate(parts[:-1]):
        nxt = getattr(owner, part, _ABSENT)
        if nxt is _ABSENT and isinstance(owner, types.ModuleType):
            try:
                nxt = importlib.import_module(f"{root.__name__}.{'.'.join(parts[:i + 1])}")
            except ImportError:
                return None
        if nxt is _ABSENT:
            return None
        owner = nxt
    value = getattr(owner, parts[-1], _ABSENT)
    return None if value is _ABSENT else (owner, parts[-1], value)


class Patcher:
    """Records every replacement so that ``undo`` restores them in reverse order."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any, Any]] = []

    def patch(self, owner: Any, attr: str, new: Any) -> None:
        raw = vars(owner).get(attr, _ABSENT)
        self._saved.append((owner, attr, raw, new))
        setattr(owner, attr, new)

    def undo(self) -> None:
        while self._saved:
            owner, attr, raw, new = self._saved.pop()
            if raw is _ABSENT:
                delattr(owner, attr)
            else:
                setattr(owner, attr, raw)

    @property
    def patched(self) -> list[tuple[Any, str]]:
        return [(owner, attr) for owner, attr, _, _ in self._saved]

    def __len__(self) -> int:
        return len(self._saved)
