"""``fib ingest``: sources -> batches or kernel calls -> weighted workloads, committed atomically.

Each source is read by the parser of its format (detected from the file unless ``--format``
says), log and trace batches are mapped to kernels through the model config, and everything is
written in one staged commit (see ``writer.py``): an ingest that fails adds nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import atomic
from ..dataset import Dataset
from ..models import load_model_config
from . import fib_trace, flashinfer_dump, flashinfer_log, request_traces, sglang, vllm
from .batches import Batch, frame_to_batches
from .bucketing import POLICIES, bucket_frame
from .mapping import ModelMap
from .report import IngestError, IngestReport
from .simulator import SimulatorOptions, simulate
from .workloads import Provenance, WorkloadBuilder
from .writer import Staging

LOG_FORMATS = ("sglang", "vllm", "flashinfer_log", "flashinfer_dump", "fib_trace")
FORMATS = ("auto", *LOG_FORMATS, *request_traces.KINDS)
_HEAD_BYTES = 1 << 16


@dataclass
class IngestOptions:
    model: str
    tp: int = 1
    page_size: int = 1
    fmt: str = "auto"
    bucketing: str = "pow2"
    strict: bool = False
    decode_log_interval: int = sglang.DEFAULT_DECODE_LOG_INTERVAL
    rank: str | None = None
    kv_capacity: int | None = None
    stats_interval: float = vllm.DEFAULT_STATS_INTERVAL_S
    chars_per_token: float = request_traces.DEFAULT_CHARS_PER_TOKEN
    tokenizer: str | None = None
    simulator: SimulatorOptions = field(default_factory=SimulatorOptions)

    def check(self) -> None:
        if self.fmt not in FORMATS:
            raise IngestError(f"unknown format {self.fmt!r}; expected one of {', '.join(FORMATS)}")
        if self.bucketing not in POLICIES:
            raise IngestError(f"unknown bucketing {self.bucketing!r}; expected one of {', '.join(POLICIES)}")
        for name in ("tp", "page_size", "decode_log_interval"):
            if getattr(self, name) < 1:
                raise IngestError(f"--{name.replace('_', '-')} must be >= 1")


def detect_format(path: Path) -> str:
    if path.is_dir():
        if flashinfer_dump.looks_like(path):
            return "flashinfer_dump"
        if fib_trace.looks_like(path):
            return "fib_trace"
        raise IngestError(f"{path}: a folder that is neither flashinfer dumps nor flashinfer-bench traces")
    from .lines import open_binary

    with open_binary(path) as fh:
        head = fh.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    kind = request_traces.detect(path, head)
    if kind:
        return kind
    for name, module in (("flashinfer_log", flashinfer_log), ("sglang", sglang), ("vllm", vllm)):
        if module.looks_like(head):
            return name
    raise IngestError(f"{path}: cannot tell its format from the first {_HEAD_BYTES} bytes; pass --format")


def ingest(sources: list[str | os.PathLike], options: IngestOptions, dataset: str | os.PathLike) -> IngestReport:
    options.check()
    ds = Dataset(dataset)
    mm = ModelMap(load_model_config(options.model), options.tp, options.page_size)
    paths = [Path(s) for s in sources]
    for p in paths:
        if not p.exists():
            raise IngestError(f"{p}: no such file or folder")
    groups: dict[str, list[Path]] = {}
    for p in paths:
        groups.setdefault(options.fmt if options.fmt != "auto" else detect_format(p), []).append(p)
    report = IngestReport()
    with Staging(ds) as stage:
        builders, extra_rows, extra_defs = [], [], []
        for fmt, files in groups.items():
            if fmt == "fib_trace":
                rows, defs = fib_trace.read(files, ds, stage.store, report)
                extra_rows += rows
                extra_defs += defs
            else:
                builders.append(_builder(fmt, files, options, mm, report))
        if options.strict:
            report.check_strict()
        for note in sorted(mm.unmapped):
            report.note(f"mapping: {note}")
        with atomic.one_sync():  # hundreds of small staged blobs: one sync, not one fsync each
            rows = extra_rows + [r for b in builders for r in b.rows(stage.store)]
        rows = _new_rows(ds, rows, report)
        definitions = _new_definitions(ds, rows, builders, extra_defs)
        stage.commit(definitions, rows)
    if rows:
        ds.write_card()
    for row in rows:
        report.added(row["definition"], row["weight"])
    return report


def _builder(fmt: str, files: list[Path], options: IngestOptions, mm: ModelMap, report: IngestReport) -> WorkloadBuilder:
    model = mm.model.name
    if fmt in ("flashinfer_log", "flashinfer_dump"):
        module = flashinfer_log if fmt == "flashinfer_log" else flashinfer_dump
        builder = WorkloadBuilder(Provenance(fmt, "flashinfer", model, "exact", module.NOTES))
        for use, where, when in module.read(files, report, model=model, tp=options.tp):
            builder.add(use, 1, where, when)
        return builder
    batches, engine, notes = _batches(fmt, files, options, report)
    builder = WorkloadBuilder(Provenance(_source_kind(fmt), engine, model, options.bucketing,
                                         f"{notes} Bucketing {options.bucketing}; tp {options.tp}, "
                                         f"page size {options.page_size}."))
    for batch in batches:
        for use in mm.uses(batch):
            builder.add(use, batch.weight, batch.where, batch.observed_at)
    return builder


def _batches(fmt: str, files: list[Path], options: IngestOptions, report: IngestReport) -> tuple[list[Batch], str | None, str]:
    if fmt == "sglang":
        frame = sglang.parse(files, report, sglang.SGLangOptions(options.decode_log_interval, rank=options.rank))
        frame = bucket_frame(frame, options.bucketing, options.page_size)
        decode = frame_to_batches(frame.filter(frame["stage"] == "decode"), measured=("batch_size", "q_tokens"))
        prefill = frame_to_batches(frame.filter(frame["stage"] == "prefill"),
                                   measured=("batch_size", "q_tokens", "kv_tokens"))
        notes = (f"SGLang scheduler log: per-sequence lengths not logged, split evenly; decode KV from "
                 f"#token (an upper bound); decode lines weighted x{options.decode_log_interval}.")
        return prefill + decode, "sglang", notes
    if fmt == "vllm":
        block = options.page_size if options.page_size > 1 else vllm.DEFAULT_BLOCK_SIZE
        batches = vllm.parse(files, report, vllm.VLLMOptions(options.kv_capacity, options.stats_interval, block))
        notes = ("vLLM interval aggregates, not per-batch shapes: batch = Running, KV length = GPU KV "
                 "cache usage x capacity / Running, weight = generation tokens in the interval / Running.")
        return _bucket_batches(batches, options), "vllm", notes
    requests = []
    for path in files:
        requests += request_traces.read(fmt, path, report, options.chars_per_token, options.tokenizer)
    sim = options.simulator
    batches = simulate(requests, SimulatorOptions(sim.max_running_requests, sim.chunked_prefill_size,
                                                  options.page_size, sim.kv_capacity, sim.block_size, sim.step_s),
                       source=str(files[0]))
    report.batches_found += len(batches)
    notes = (f"{fmt} request trace replayed by the continuous-batching simulator "
             f"(max running {sim.max_running_requests}, chunked prefill {sim.chunked_prefill_size}, "
             f"page size {options.page_size}, prefix blocks {sim.block_size}).")
    return _bucket_batches(batches, options), None, notes


def _bucket_batches(batches: list[Batch], options: IngestOptions) -> list[Batch]:
    if options.bucketing == "exact" or not batches:
        return batches
    import polars as pl

    from .batches import FRAME_SCHEMA

    frame = pl.DataFrame([{"stage": b.stage, "batch_size": b.batch_size, "q_tokens": b.q_tokens,
                           "kv_tokens": b.kv_tokens, "extra_tokens": b.extra_tokens, "weight": b.weight,
                           "observed_at": b.observed_at.isoformat() if b.observed_at else None,
                           "where": b.where} for b in batches], schema=FRAME_SCHEMA)
    measured = batches[0].measured
    return frame_to_batches(bucket_frame(frame, options.bucketing, options.page_size), measured=measured)


def _source_kind(fmt: str) -> str:
    return {"sglang": "sglang_log", "vllm": "vllm_log"}.get(fmt, "request_trace")


def _new_rows(ds: Dataset, rows: list[dict], report: IngestReport) -> list[dict]:
    have = {k[0] for k in ds.keys("workloads")}
    fresh = [r for r in rows if r["uuid"] not in have]
    if len(fresh) < len(rows):
        report.drop("workload already in the dataset (same source ingested before)", len(rows) - len(fresh))
    return fresh


def _new_definitions(ds: Dataset, rows: list[dict], builders: list[WorkloadBuilder], extra: list[dict]) -> list[dict]:
    have = {k[0] for k in ds.keys("definitions")}
    needed = {r["definition"] for r in rows}
    known = {d["name"]: d for d in extra}
    for b in builders:
        for item in b.seen.values():
            known.setdefault(item.use.definition["name"], item.use.definition)
    missing = needed - have - set(known)
    if missing:
        raise IngestError(f"workloads refer to definitions that are neither in the dataset nor "
                          f"buildable: {', '.join(sorted(missing))}")
    return [known[n] for n in sorted(needed - have)]
