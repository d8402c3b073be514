"""Serve with the dataset's fastest correct kernels: ``fib_data.apply(...)`` patches flashinfer.

Modules: ``table`` (dispatch table from the evaluations), ``nearest`` (shape buckets),
``matching`` (call -> definition), ``routes`` (hot and cold path of a patched call),
``adapters/`` (one per flashinfer entry point), ``patch`` (install/undo), ``runtime`` (the
handle), ``report`` (explain), ``sample`` (rows for demo datasets)."""

import sys
import types

from .runtime import ApplyRuntime, apply, detect_hardware
from .table import DispatchTable, build_table

__all__ = ["ApplyRuntime", "DispatchTable", "apply", "build_table", "detect_hardware"]


class _CallableModule(types.ModuleType):
    """`fib_data.apply` is both this package and the function: importing a submodule binds the
    package onto `fib_data`, so the package itself must be callable."""

    def __call__(self, *args, **kwargs) -> ApplyRuntime:
        return apply(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
