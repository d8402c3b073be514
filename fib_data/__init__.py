"""fib-data: GPU-kernel benchmarks for LLM serving as a queryable dataset."""

import importlib

__all__ = ["Dataset", "open_dataset", "DEFAULT_DATASET", "SCHEMAS", "TABLES", "apply"]
__version__ = "0.1.0"

# Lazy: `import fib_data` stays free of pyarrow and of the apply runtime (and of torch). Benchmark
# workers import fib_data.executor.* and need neither; every spawned worker paid pyarrow's import.
_LAZY = {"Dataset": ".dataset", "open_dataset": ".dataset", "DEFAULT_DATASET": ".dataset",
         "SCHEMAS": ".schema", "TABLES": ".schema"}


def __getattr__(name: str):
    if name == "apply":  # the package fib_data.apply is callable: the same object either way
        return importlib.import_module(".apply", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'fib_data' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
