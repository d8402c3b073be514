"""The definition's PyTorch reference as a callable returning outputs in definition order."""

from __future__ import annotations

import hashlib
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

from .sources import import_file

_MODULES: dict[str, ModuleType] = {}
#: Files that hold reference code; the worker watches for calls into them during solution calls.
REFERENCE_FILES: set[str] = set()


def reference_module(definition: Mapping) -> ModuleType:
    source = definition["reference"]
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    module = _MODULES.get(key)
    if module is None:
        module = import_file(f"fib_reference_{key}", {"reference.py": source}, "reference.py")
        if not callable(getattr(module, "run", None)):
            raise ValueError(f"definition {definition['name']}: reference defines no run()")
        REFERENCE_FILES.add(module.__file__)
        _MODULES[key] = module
    return module


def normalize_outputs(result: Any, names: Sequence[str]) -> tuple:
    """A tensor, a tuple/list in output order, or a dict by output name -> a tuple."""
    if isinstance(result, Mapping):
        missing = [n for n in names if n not in result]
        if missing:
            raise ValueError(f"result has no outputs {', '.join(missing)}")
        return tuple(result[n] for n in names)
    if isinstance(result, (tuple, list)):
        if len(result) != len(names):
            raise ValueError(f"returned {len(result)} outputs, the definition has {len(names)}")
        return tuple(result)
    if len(names) != 1:
        raise ValueError(f"returned one value, the definition has {len(names)} outputs")
    return (result,)


def load_reference(definition_row: Mapping) -> Callable[..., tuple]:
    """``ref(*inputs) -> tuple of outputs`` in the definition's output order."""
    run = reference_module(definition_row).run
    names = [o["name"] for o in definition_row["outputs"]]

    def reference(*inputs):
        return normalize_outputs(run(*inputs), names)

    reference.__name__ = f"reference_{definition_row['name']}"
    return reference
