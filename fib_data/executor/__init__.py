"""The benchmark executor: inputs, builds, correctness, timing, isolated workers, storage.

Untrusted solution code only ever runs inside a worker process (``worker.py``); the parent turns
the worker's raw measurements into evaluation rows (``verdict.py``) and writes them (``store.py``).
Nothing here imports torch at module level except the modules that only run inside a worker.
"""

from .inputs import make_inputs
from .build import build_solution
from .reference import load_reference

__all__ = ["make_inputs", "build_solution", "load_reference"]
