"""The four table schemas: the one source of truth.

Everything else (JSON Schema files under ``schemas/``, validation, the dataset card's field list)
is generated from or checked against what is declared here. Field names follow the FlashInfer
Trace schema (flashinfer-bench) so that its users find familiar names.
"""

from __future__ import annotations

import pyarrow as pa

TABLES = ("definitions", "workloads", "solutions", "evaluations")

#: Primary key of each table. Evaluations are keyed by what makes a measurement unique: the
#: solution's content (hash), the workload, and the environment it ran in.
KEYS: dict[str, tuple[str, ...]] = {
    "definitions": ("name",),
    "workloads": ("uuid",),
    "solutions": ("name",),
    "evaluations": ("solution_hash", "workload_uuid", "environment_hash"),
}

DTYPES = (
    "float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1",
    "int64", "int32", "int16", "int8", "uint8", "bool",
)

STATUSES = (
    "PASSED", "INCORRECT_SHAPE", "INCORRECT_DTYPE", "INCORRECT_NUMERICAL",
    "RUNTIME_ERROR", "COMPILE_ERROR", "TIMEOUT",
)

LANGUAGES = ("python", "triton", "cuda", "cpp", "tilelang")
BINDINGS = ("torch", "tvm-ffi")
INPUT_KINDS = ("random", "scalar", "safetensors")
AXIS_KINDS = ("const", "var")
TIMERS = ("cuda_event", "cuda_graph", "cupti", "wall_clock")


def _f(name: str, type_: pa.DataType, doc: str, nullable: bool = True, **extra: str) -> pa.Field:
    meta = {"description": doc, **extra}
    return pa.field(name, type_, nullable=nullable, metadata=meta)


def _enum(name: str, values: tuple[str, ...], doc: str, nullable: bool = False) -> pa.Field:
    return _f(name, pa.string(), doc, nullable=nullable, enum=",".join(values))


_TENSOR_SPEC = pa.struct([
    _f("name", pa.string(), "Argument name, in call order.", nullable=False),
    _f("shape", pa.list_(pa.string()),
       "Axis names of each dimension; null or empty for a scalar."),
    _enum("dtype", DTYPES, "Element type."),
    _f("description", pa.string(), "What the argument holds."),
])

_AXIS = pa.struct([
    _f("name", pa.string(), "Axis name.", nullable=False),
    _enum("type", AXIS_KINDS, "const: fixed by the definition; var: set by each workload."),
    _f("value", pa.int64(), "Value of a const axis; null for var axes."),
    _f("description", pa.string(), "What the axis counts."),
])

_TOLERANCE = pa.struct([
    _enum("dtype", DTYPES, "Output dtype these tolerances apply to."),
    _f("atol", pa.float64(), "Absolute tolerance.", nullable=False),
    _f("rtol", pa.float64(), "Relative tolerance.", nullable=False),
    _f("reason", pa.string(), "One line on why these values."),
])

DEFINITIONS = pa.schema([
    _f("name", pa.string(), "Unique name; encodes the const axes.", nullable=False),
    _f("op_type", pa.string(), "Operation family (gemm, gqa_paged, rmsnorm, ...).", nullable=False),
    _f("tags", pa.list_(pa.string()), "Free tags such as model:llama-3.1-8b, stage:decode, tp:1."),
    _f("description", pa.string(), "What the kernel computes and where the shapes come from."),
    _f("axes", pa.list_(_AXIS), "Named dimensions, in declaration order.", nullable=False),
    _f("inputs", pa.list_(_TENSOR_SPEC), "Input arguments in call order.", nullable=False),
    _f("outputs", pa.list_(_TENSOR_SPEC), "Output arguments in call order.", nullable=False),
    _f("reference", pa.string(), "PyTorch source defining run(*inputs).", nullable=False),
    _f("constraints", pa.list_(pa.string()),
       "Python expressions over axes and inputs that every workload satisfies."),
    _f("tolerances", pa.list_(_TOLERANCE), "Per-dtype atol/rtol used by correctness checks."),
])

_WORKLOAD_AXIS = pa.struct([
    _f("name", pa.string(), "Var axis name.", nullable=False),
    _f("value", pa.int64(), "Its value in this workload.", nullable=False),
])

_WORKLOAD_INPUT = pa.struct([
    _f("name", pa.string(), "Input argument name.", nullable=False),
    _enum("type", INPUT_KINDS,
          "random: drawn from a seeded generator; scalar: value given; safetensors: stored blob."),
    _f("value", pa.string(), "Scalar value as a JSON literal (type=scalar)."),
    _f("sha256", pa.string(), "Blob content hash (type=safetensors)."),
    _f("tensor_key", pa.string(), "Tensor name inside the blob (type=safetensors)."),
])

WORKLOADS = pa.schema([
    _f("uuid", pa.string(), "Unique id.", nullable=False),
    _f("definition", pa.string(), "Definition name.", nullable=False),
    _f("axes", pa.list_(_WORKLOAD_AXIS), "Values of the definition's var axes.", nullable=False),
    _f("inputs", pa.list_(_WORKLOAD_INPUT), "How to materialise each input.", nullable=False),
    _f("weight", pa.int64(), "How many times this shape was observed in traffic.", nullable=False),
    _f("source_kind", pa.string(),
       "Where it came from: curated, sglang_log, vllm_log, flashinfer_log, flashinfer_dump, "
       "fib_trace, request_trace, import, synthetic."),
    _f("source_file", pa.string(), "File it was derived from."),
    _f("model", pa.string(), "Model whose traffic produced it."),
    _f("engine", pa.string(), "Serving engine (sglang, vllm, ...)."),
    _f("observed_at", pa.timestamp("us", tz="UTC"), "When the traffic was observed."),
    _f("measured_axes", pa.list_(pa.string()),
       "Axes read from the source; the others were synthesized by a documented model."),
    _f("bucketing", pa.string(), "Shape bucketing policy applied at ingest (exact, pow2, ...)."),
    _f("notes", pa.string(), "Free provenance notes (how aggregates were turned into shapes)."),
])

_SOURCE = pa.struct([
    _f("path", pa.string(), "Relative path inside the solution.", nullable=False),
    _f("content", pa.string(), "Full text.", nullable=False),
])

SOLUTIONS = pa.schema([
    _f("name", pa.string(), "Unique name.", nullable=False),
    _f("definition", pa.string(), "Definition it implements.", nullable=False),
    _f("author", pa.string(), "Person or agent that wrote it.", nullable=False),
    _f("description", pa.string(), "Technique used."),
    _enum("language", LANGUAGES, "Source language."),
    _f("target_hardware", pa.list_(pa.string()), "Hardware it is meant for (e.g. H100, cpu)."),
    _f("entry_point", pa.string(), "file::function to call.", nullable=False),
    _f("destination_passing_style", pa.bool_(),
       "True: outputs are preallocated and passed after the inputs.", nullable=False),
    _enum("binding", BINDINGS, "Binding of C++/CUDA code (torch or tvm-ffi).", nullable=True),
    _f("dependencies", pa.list_(pa.string()), "Libraries it needs (flashinfer, cublas, ...)."),
    _f("sources", pa.list_(_SOURCE), "Source files.", nullable=False),
    _f("content_hash", pa.string(), "sha256 of the canonical solution content.", nullable=False),
])

_ENVIRONMENT = pa.struct([
    _f("hardware", pa.string(), "Hardware name used to group results (e.g. NVIDIA H100 80GB HBM3).",
       nullable=False),
    _f("gpu", pa.string(), "GPU model, null on CPU."),
    _f("driver", pa.string(), "GPU driver version."),
    _f("cuda", pa.string(), "CUDA runtime version."),
    _f("torch", pa.string(), "torch version."),
    _f("triton", pa.string(), "triton version."),
    _f("flashinfer", pa.string(), "flashinfer version."),
    _f("python", pa.string(), "Python version."),
    _f("other_libs", pa.list_(pa.struct([
        _f("name", pa.string(), "Library.", nullable=False),
        _f("version", pa.string(), "Version.", nullable=False),
    ])), "Versions of any other library recorded."),
])

_TIMING = pa.struct([
    _enum("timer", TIMERS, "How latency was measured.", nullable=True),
    _f("warmup_ms", pa.float64(), "Warm-up budget in milliseconds."),
    _f("repetitions", pa.int64(), "Timed calls per trial."),
    _f("trials", pa.int64(), "Correctness trials with fresh inputs."),
    _f("input_sets", pa.int64(), "Distinct input sets rotated during timing."),
    _f("l2_flush", pa.bool_(), "L2 flushed before each timed call."),
    _f("cuda_graph", pa.bool_(), "Calls captured and replayed in a CUDA graph."),
])

EVALUATIONS = pa.schema([
    _f("run_id", pa.string(), "Benchmark run that produced the row.", nullable=False),
    _f("definition", pa.string(), "Definition name.", nullable=False),
    _f("workload_uuid", pa.string(), "Workload evaluated.", nullable=False),
    _f("solution", pa.string(), "Solution name.", nullable=False),
    _f("solution_hash", pa.string(), "content_hash of the solution evaluated.", nullable=False),
    _enum("status", STATUSES, "Outcome."),
    _f("max_absolute_error", pa.float64(), "Max |out - ref| over trials."),
    _f("max_relative_error", pa.float64(), "Max |out - ref| / |ref| over trials."),
    _f("latency_ms", pa.float64(), "Median solution latency."),
    _f("reference_latency_ms", pa.float64(), "Median reference latency, same worker and inputs."),
    _f("speedup_factor", pa.float64(), "reference_latency_ms / latency_ms."),
    _f("latency_iqr_ms", pa.float64(), "Interquartile range of the solution latency."),
    _f("reference_latency_iqr_ms", pa.float64(), "Interquartile range of the reference latency."),
    _f("achieved_gbps", pa.float64(), "Bytes moved (inputs + outputs) / latency, in GB/s."),
    _f("achieved_tflops", pa.float64(), "FLOPs of the definition / latency, in TFLOP/s."),
    _f("bandwidth_fraction", pa.float64(), "achieved_gbps / the device's peak bandwidth."),
    _f("compute_fraction", pa.float64(), "achieved_tflops / the device's peak for the dtype."),
    _f("timing", _TIMING, "Timing configuration used."),
    _f("device", pa.string(), "Device the evaluation ran on (cuda:0, cpu, ...)."),
    _f("environment", _ENVIRONMENT, "Hardware and library versions.", nullable=False),
    _f("environment_hash", pa.string(), "Hash of the environment struct (part of the key).",
       nullable=False),
    _f("flags", pa.list_(pa.string()),
       "Review flags such as implausible_speedup, input_mutated, wall_clock_gap, host_bound (latency includes host time)."),
    _f("timestamp", pa.timestamp("us", tz="UTC"), "When the evaluation finished.", nullable=False),
    _f("log", pa.string(), "Captured output and error text."),
    _f("correctness_extra", pa.string(), "Extra correctness statistics as a JSON object."),
])

SCHEMAS: dict[str, pa.Schema] = {
    "definitions": DEFINITIONS,
    "workloads": WORKLOADS,
    "solutions": SOLUTIONS,
    "evaluations": EVALUATIONS,
}


def schema_of(table: str) -> pa.Schema:
    try:
        return SCHEMAS[table]
    except KeyError:
        raise ValueError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}") from None


def description(field: pa.Field) -> str:
    return (field.metadata or {}).get(b"description", b"").decode()


def enum_values(field: pa.Field) -> tuple[str, ...] | None:
    raw = (field.metadata or {}).get(b"enum")
    return tuple(raw.decode().split(",")) if raw else None
