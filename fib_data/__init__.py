"""fib-data: GPU-kernel benchmarks for LLM serving as a queryable dataset."""

from .dataset import DEFAULT_DATASET, Dataset, open_dataset
from .schema import SCHEMAS, TABLES

__all__ = ["Dataset", "open_dataset", "DEFAULT_DATASET", "SCHEMAS", "TABLES", "apply"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: `import fib_data` stays free of the apply runtime (and of torch). The package
    # fib_data.apply is callable, so it is the same object whichever way it was reached.
    if name == "apply":
        import importlib

        return importlib.import_module(".apply", __name__)
    raise AttributeError(f"module 'fib_data' has no attribute {name!r}")
