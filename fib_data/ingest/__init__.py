"""Ingestion: serving logs and request traces become weighted workload rows (``fib ingest``).

One module per source format (``sglang``, ``vllm``, ``flashinfer_log``, ``flashinfer_dump``,
``fib_trace``, ``request_traces`` + ``simulator``), a common batch record (``batches``), the
batch -> kernel mapping (``mapping``, ``bucketing``), row building (``workloads``), the atomic
commit (``writer``), the summary (``report``) and the command itself (``driver``).
"""

from .driver import FORMATS, IngestOptions, ingest
from .report import IngestError, IngestReport

__all__ = ["FORMATS", "IngestError", "IngestOptions", "IngestReport", "ingest"]
