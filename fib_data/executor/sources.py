"""Import Python source text as a module, from files written to a private temp folder.

Files on disk (not ``exec`` of strings) so that tracebacks, ``inspect`` and ``@triton.jit``
(which reads its function's source) all work. Each package gets a unique name, so two solutions
with a ``utils.py`` never see each other's module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Mapping

_ROOT: Path | None = None


def private_dir() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="fib-exec-"))
    return _ROOT


def write_package(package: str, files: Mapping[str, str]) -> Path:
    folder = private_dir() / package
    for rel, content in files.items():
        path = (folder / rel).resolve()
        if folder.resolve() not in path.parents:
            raise ValueError(f"source path {rel!r} leaves the solution folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    init = folder / "__init__.py"
    if not init.exists():
        init.write_text("")
    return folder


def import_file(package: str, files: Mapping[str, str], entry_file: str) -> ModuleType:
    """Write ``files`` under a package named ``package`` and import ``entry_file`` from it.

    Sibling imports work both ways: ``from . import utils`` and, while importing, ``import utils``.
    """
    folder = write_package(package, files)
    if package not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            package, folder / "__init__.py", submodule_search_locations=[str(folder)])
        pkg = importlib.util.module_from_spec(spec)
        sys.modules[package] = pkg
        spec.loader.exec_module(pkg)
    module_name = package + "." + entry_file.removesuffix(".py").replace("/", ".")
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(module_name)
    finally:
        sys.path.remove(str(folder))
