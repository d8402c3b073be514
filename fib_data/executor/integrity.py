"""Notice when solution code changes the worker: patched timers/torch functions, reference calls.

``Snapshot`` records the identity of every function and class in the modules that measuring and
checking rely on, taken before any solution loads; ``changed()`` lists what differs now. New
attributes are ignored (torch adds submodules lazily); replaced or deleted ones are not.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from contextlib import contextmanager
from typing import Iterator

WATCHED = ("time", "torch", "torch.cuda", "torch.testing", "builtins", "gc",
           "fib_data.executor.timing", "fib_data.executor.correctness", "fib_data.executor.inputs",
           "fib_data.executor.reference", "fib_data.executor.integrity", "fib_data.executor.worker",
           "fib_data.executor.sampling", "fib_data.executor.sampler_eval", "fib_data.executor.evaluate")


def _namespace_items(obj) -> dict[str, object]:
    return {k: v for k, v in list(vars(obj).items()) if callable(v) or isinstance(v, (classmethod, staticmethod))}


_TORCH_DIR = str(Path(importlib.util.find_spec("torch").origin).parent) if importlib.util.find_spec("torch") else None


def _benign(old: object, new: object) -> bool:
    """torch's own lazy wrappers (dynamo wraps e.g. torch.manual_seed on first compile) are fine."""
    code = getattr(new, "__code__", None)
    return (getattr(new, "__wrapped__", None) is old and code is not None and _TORCH_DIR is not None
            and code.co_filename.startswith(_TORCH_DIR))


class Snapshot:
    def __init__(self) -> None:
        import torch

        targets = [(name, sys.modules[name]) for name in WATCHED if name in sys.modules]
        targets += [(f"torch.{cls.__name__}" if cls is torch.Tensor else f"torch.cuda.{cls.__name__}", cls)
                    for cls in (torch.Tensor, getattr(torch.cuda, "Event", None),
                                getattr(torch.cuda, "Stream", None)) if cls is not None]
        self.items = [(label, obj, _namespace_items(obj)) for label, obj in targets]

    def changed(self) -> list[str]:
        found = []
        for label, obj, before in self.items:
            if label in sys.modules and sys.modules[label] is not obj:
                found.append(f"sys.modules[{label!r}]")
                continue
            now = vars(obj)  # looked up, not rebuilt: this runs after every job
            found += [f"{label}.{k}" for k, v in before.items()
                      if now.get(k) is not v and not _benign(v, now.get(k))]
        if sys.getprofile() is not None:
            found.append("sys.setprofile")
        return found


@contextmanager
def watch_calls_into(files: set[str]) -> Iterator[list[str]]:
    """Record Python calls whose code lives in ``files`` (the references) while the block runs."""
    hits: list[str] = []

    def profiler(frame, event, arg):
        if event == "call" and frame.f_code.co_filename in files and not hits:
            hits.append(f"{frame.f_code.co_name} in {frame.f_code.co_filename}")

    previous = sys.getprofile()
    sys.setprofile(profiler)
    threading.setprofile(profiler)
    try:
        yield hits
    finally:
        if sys.getprofile() is not profiler:
            hits.append("the solution replaced the profiler")
        sys.setprofile(previous)
        threading.setprofile(None)
