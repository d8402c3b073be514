"""Kernel uses -> workloads rows: identical shapes merged, ``weight`` = how often they occurred.

Rows come from the curated generator (``make_workload``), which derives the remaining var axes
from the per-sequence lengths and stores structured inputs (page tables, indptrs) as blobs.
When a source captured the real index tensors (level-10 dumps, flashinfer-bench traces) those
replace the synthesized ones. Uuids are derived from the row's content and provenance, so
ingesting the same source again yields the same uuids and adds nothing.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..blobs import BlobStore
from ..curated.workloads import NAMESPACE, make_workload
from .mapping import Use


@dataclass
class Provenance:
    source_kind: str
    engine: str | None
    model: str | None
    bucketing: str
    notes: str


@dataclass
class _Seen:
    use: Use
    weight: int = 0
    where: str = ""
    observed_at: datetime | None = None


@dataclass
class WorkloadBuilder:
    provenance: Provenance
    seen: dict[tuple, _Seen] = field(default_factory=dict)

    def add(self, use: Use, weight: int, where: str = "", observed_at: datetime | None = None) -> None:
        item = self.seen.get(use.key)
        if item is None:
            item = self.seen[use.key] = _Seen(use, where=where)
        item.weight += weight
        if observed_at and (item.observed_at is None or observed_at < item.observed_at):
            item.observed_at = observed_at

    def rows(self, store: BlobStore) -> list[dict]:
        return [self._row(item, store) for item in self.seen.values()]

    def _row(self, item: _Seen, store: BlobStore) -> dict:
        use, p = item.use, self.provenance
        file = item.where.rpartition(":")[0] or item.where  # "file:line", "file:step7" or a folder
        where = f" First seen at {item.where}." if item.where else ""
        row = make_workload(
            use.definition, dict(use.axes), store,
            kv_lens=list(use.kv_lens) if use.kv_lens is not None else None,
            qo_lens=list(use.qo_lens) if use.qo_lens is not None else None,
            weight=item.weight,
            provenance={"source_kind": p.source_kind, "source_file": file or None,
                        "model": p.model, "engine": p.engine, "observed_at": _utc(item.observed_at),
                        "measured_axes": sorted(use.measured), "bucketing": p.bucketing,
                        "notes": p.notes + where})
        if use.tensors:
            _use_real_tensors(row, use.tensors, store)
        key = json.dumps([row["uuid"], row["inputs"], row["weight"], p.source_kind, row["source_file"],
                          p.bucketing], sort_keys=True, default=str)
        row["uuid"] = str(uuidlib.uuid5(NAMESPACE, key))
        return row


def _use_real_tensors(row: dict, tensors: dict, store: BlobStore) -> None:
    sha = store.put({k: tensors[k] for k in sorted(tensors)})
    for inp in row["inputs"]:
        if inp["name"] in tensors:
            inp.update(type="safetensors", sha256=sha, tensor_key=inp["name"], value=None)


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
