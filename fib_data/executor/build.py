"""Turn a solutions row into a callable, once per content hash.

One builder per language behind ``build_solution``: python and triton are imported from their
sources; cuda and cpp are compiled with ``torch.utils.cpp_extension.load`` (torch binding: the
sources hold the ``PYBIND11_MODULE``). Any failure, import errors included, is a ``BuildError``,
which the executor records as COMPILE_ERROR.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from .sources import import_file

_CACHE: dict[str, Callable] = {}
_FAILED: dict[str, str] = {}


class BuildError(Exception):
    pass


def split_entry_point(entry_point: str) -> tuple[str, str]:
    if "::" not in entry_point:
        raise BuildError(f"entry_point {entry_point!r} is not 'file::function'")
    file, func = entry_point.rsplit("::", 1)
    return file, func


def _build_python(row: Mapping, key: str) -> Callable:
    file, func = split_entry_point(row["entry_point"])
    files = {s["path"]: s["content"] for s in row["sources"]}
    if file not in files:
        raise BuildError(f"entry file {file!r} is not among the sources ({', '.join(files)})")
    module = import_file(f"fib_solution_{key[:16]}", files, file)
    fn = getattr(module, func, None)
    if not callable(fn):
        raise BuildError(f"{file} defines no function {func!r}")
    return fn


def cache_root() -> Path:
    """Where the executor keeps what outlives a run (``FIB_CACHE``, default ~/.cache/fib_data)."""
    return Path(os.environ.get("FIB_CACHE") or Path.home() / ".cache" / "fib_data")


def extension_cache_dir(key: str) -> Path:
    root = os.environ.get("FIB_EXTENSION_CACHE") or cache_root() / "torch_ext"
    path = Path(root) / key[:24]
    path.mkdir(parents=True, exist_ok=True)
    return path


def _build_extension(row: Mapping, key: str) -> Callable:
    if (row.get("binding") or "torch") != "torch":
        raise BuildError(f"binding {row.get('binding')!r} is not supported yet; use binding=torch")
    from torch.utils.cpp_extension import load

    file, func = split_entry_point(row["entry_point"])
    files = {s["path"]: s["content"] for s in row["sources"]}
    # Sources live beside the build, at a path fixed by the content hash: torch versions an
    # extension by its build arguments (include paths among them) and ninja by source paths and
    # times, so a fresh temp folder per process would rebuild what a pre-build already compiled.
    folder = extension_cache_dir(key) / "src"
    compiled = []
    for rel, content in files.items():
        path = (folder / rel).resolve()
        if folder.resolve() not in path.parents:
            raise BuildError(f"source path {rel!r} leaves the solution folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
        if path.suffix in (".cu", ".cpp", ".cc", ".cxx"):
            compiled.append(str(path))
    if not compiled:
        raise BuildError("no .cu/.cpp sources to compile")
    module = load(name=f"fib_ext_{key[:16]}", sources=compiled, build_directory=str(extension_cache_dir(key)),
                  extra_include_paths=[str(folder)], extra_cuda_cflags=["-O3"], verbose=False)
    fn = getattr(module, func, None)
    if not callable(fn):
        raise BuildError(f"the extension built from {file} exports no {func!r}")
    return fn


BUILDERS: dict[str, Callable[[Mapping, str], Callable]] = {
    "python": _build_python, "triton": _build_python, "cuda": _build_extension, "cpp": _build_extension,
}


def build_solution(solution_row: Mapping, device: str = "cpu") -> Callable[..., Any]:
    """The solution's entry function; raises BuildError (cached: a failed build fails fast again)."""
    key = solution_row.get("content_hash") or ""
    if not key:
        from ..hashing import solution_hash

        key = solution_hash(dict(solution_row))
    if key in _CACHE:
        return _CACHE[key]
    if key in _FAILED:
        raise BuildError(_FAILED[key])
    builder = BUILDERS.get(solution_row.get("language"))
    try:
        if builder is None:
            raise BuildError(f"language {solution_row.get('language')!r} has no builder")
        fn = builder(solution_row, key)
    except BaseException as exc:  # a solution's import may raise anything, SystemExit included
        if isinstance(exc, KeyboardInterrupt):
            raise
        message = exc.args[0] if isinstance(exc, BuildError) else f"{type(exc).__name__}: {exc}"
        _FAILED[key] = str(message)
        raise BuildError(str(message)) from exc
    _CACHE[key] = fn
    return fn
