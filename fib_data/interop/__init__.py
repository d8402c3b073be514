"""Interop with the FlashInfer Trace JSON layout (definitions/, workloads/, solutions/, traces/)."""

from .exporter import export_json
from .importer import ImportResult, import_json

__all__ = ["import_json", "export_json", "ImportResult"]
