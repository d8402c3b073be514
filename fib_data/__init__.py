"""fib-data: GPU-kernel benchmarks for LLM serving as a queryable dataset."""

from .dataset import DEFAULT_DATASET, Dataset, open_dataset
from .schema import SCHEMAS, TABLES

__all__ = ["Dataset", "open_dataset", "DEFAULT_DATASET", "SCHEMAS", "TABLES"]
__version__ = "0.1.0"
