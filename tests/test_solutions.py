"""Baseline solutions: rows fit the schema, entry points resolve with the definition's signature,
and every torch / triton (interpreter) solution matches its reference on small shapes.

Shipped definitions are used where their CPU-profile workloads are cheap; the heavy ones (Qwen3
MoE's 1.2 GB of experts, a 128k vocabulary sampled 64 times, triton GEMMs in the interpreter) are
checked through the same factories with small const axes, so the same kernel files are exercised.
"""

from __future__ import annotations

import ast
import re
import sys

import pytest

from fib_data.blobs import BlobStore
from fib_data.curated import ops
from fib_data.curated.catalog import definitions
from fib_data.curated.solutions import solutions
from fib_data.curated.solutions.catalog import VARIANTS, kind_of
from fib_data.curated.solutions.check import check
from fib_data.curated.solutions.rows import Variant, reference_constants, solution_row
from fib_data.curated.workloads import default_workloads
from fib_data.hashing import solution_hash
from fib_data.rows import to_arrow

LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}

SHIPPED = definitions()
ROWS = solutions(SHIPPED)
BY_NAME = {d["name"]: d for d in SHIPPED}

#: Small stand-ins built by the same factories (same references, same kernel files).
SMALL = [
    ops.rmsnorm(96, 1e-6), ops.fused_add_rmsnorm(96, 1e-6), ops.silu_and_mul(80),
    ops.rope_llama31(4, 2, 32, 500000.0, LLAMA3_SCALING), ops.gemm(96, 160),
    ops.gqa_paged_decode(8, 2, 32, 1), ops.gqa_paged_decode(8, 2, 32, 4),
    ops.gqa_paged_decode(8, 1, 32, 16), ops.moe(8, 2, 64, 32), ops.top_k_top_p_sampling(500),
    ops.gemm_fp8_block_scale(256, 384),
]
#: Shipped definitions too slow for CPU tests even at the cpu profile.
HEAVY = ("top_k_top_p_sampling_from_probs_v", "moe_")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return BlobStore(tmp_path_factory.mktemp("blobs"))


def _cases(defs, names):
    return [pytest.param(d, v, id=f"{d['name']}__{v.name}") for d in defs
            for v in VARIANTS.get(kind_of(d) or "", []) if v.name in names]


def _assert_passes(definition, variant, store):
    row = solution_row(definition, variant)
    workloads = default_workloads(definition, store, profile="cpu")
    assert workloads, f"{definition['name']} has no cpu workloads"
    for workload in workloads:
        outcome = check(definition, row, workload, store, "cpu")
        assert outcome.status == "PASSED", (row["name"], workload["axes"], outcome)


# ---- rows ------------------------------------------------------------------------------------
def test_rows_fit_the_schema_and_hash_their_content():
    table = to_arrow("solutions", ROWS)
    assert table.num_rows == len(ROWS)
    assert len({r["name"] for r in ROWS}) == len(ROWS)
    for row in ROWS:
        assert row["content_hash"] == solution_hash(row)
        assert row["definition"] in BY_NAME
        assert len(row["sources"]) == 1 and row["sources"][0]["content"].strip()


def test_coverage_meets_the_issue():
    langs = {}
    for row in ROWS:
        langs.setdefault(row["name"].rsplit("__", 1)[1], set()).add(row["definition"])
    assert langs["torch"] == set(BY_NAME), "every definition has a plain torch solution"
    triton_kinds = {kind_of(BY_NAME[d]) for d in langs["triton"]}
    assert len(triton_kinds) >= 6
    assert {"gqa_paged_decode", "rmsnorm", "fused_add_rmsnorm"} <= triton_kinds
    assert {kind_of(BY_NAME[d]) for d in langs["cuda"]} >= {"rmsnorm", "silu_and_mul"}
    assert len(langs["torch_compile"]) >= 3
    flashinfer_kinds = {kind_of(BY_NAME[d]) for d in langs["flashinfer"]}
    assert {"gqa_paged_decode", "gqa_paged_decode_ps1", "gqa_paged_prefill_causal",
            "gqa_ragged_prefill_causal", "mla_paged_decode", "rmsnorm", "fused_add_rmsnorm",
            "silu_and_mul", "rope_llama31", "top_k_top_p_sampling_from_probs"} <= flashinfer_kinds


def _signature(row):
    """Parameter names of the entry function, read from the source (no import needed)."""
    file, func = row["entry_point"].split("::")
    text = row["sources"][0]["content"]
    assert row["sources"][0]["path"] == file
    if file.endswith(".cu"):
        assert re.search(rf'm\.def\("{func}", &{func}', text), "the .cu binds its entry point"
        params = re.search(rf"^void {func}\(([^)]*)\)", text, re.MULTILINE).group(1)
        return [p.split()[-1] for p in params.split(",")]
    fn = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == func)
    return [a.arg for a in fn.args.args]


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_entry_point_takes_the_definition_arguments(row):
    definition = BY_NAME[row["definition"]]
    expected = [i["name"] for i in definition["inputs"]]
    if row["destination_passing_style"]:
        expected += [o["name"] for o in definition["outputs"]]
    assert _signature(row) == expected


def test_constants_come_from_the_reference():
    definition = ops.rmsnorm(128, 1e-6)
    assert reference_constants(definition)["EPS"] == 1e-6
    texts = [r["sources"][0]["content"] for r in solutions([definition])]
    assert all(re.search(r"^(constexpr float )?EPS = 1e-06;?$", t, re.MULTILINE) for t in texts)
    rope = solutions([ops.rope_llama31(4, 2, 32, 10000.0, {**LLAMA3_SCALING, "factor": 32.0})])
    assert all("ROPE_THETA = 10000.0" in r["sources"][0]["content"] for r in rope)
    assert all("ROPE_SCALE = 32.0" in r["sources"][0]["content"] for r in rope)


def test_missing_reference_constant_is_named():
    variant = Variant("torch", "python", "pytorch/norm.py", "rmsnorm", False, "x", constants=("TOP_K",))
    with pytest.raises(KeyError, match="rmsnorm_h96.*TOP_K"):
        solution_row(ops.rmsnorm(96, 1e-6), variant)


def test_unknown_definition_gets_no_solutions():
    assert solutions([{**ops.rmsnorm(96, 1e-6), "name": "layernorm_h96"}]) == []


# ---- numerics on CPU ---------------------------------------------------------------------------
@pytest.mark.parametrize("definition,variant", _cases(
    [d for d in SHIPPED if not d["name"].startswith(HEAVY)], {"torch", "torch_compile"}))
def test_torch_matches_reference(definition, variant, store):
    _assert_passes(definition, variant, store)


@pytest.mark.parametrize("definition,variant", _cases(SMALL, {"torch", "torch_compile", "triton"}))
def test_small_shapes_match_reference(definition, variant, store):
    """Triton runs in the interpreter here (conftest sets TRITON_INTERPRET=1)."""
    _assert_passes(definition, variant, store)


def test_wrong_constant_is_caught(store):
    """The check can fail: a solution built for eps 1e-1 does not pass an eps 1e-6 definition."""
    definition = ops.rmsnorm(96, 1e-6)
    variant = next(v for v in VARIANTS["rmsnorm"] if v.name == "torch")
    wrong = solution_row(ops.rmsnorm(96, 1e-1), variant) | {"definition": definition["name"]}
    wrong["content_hash"] = solution_hash(wrong)
    workload = default_workloads(definition, store, profile="cpu")[0]
    assert check(definition, wrong, workload, store, "cpu").status == "INCORRECT_NUMERICAL"


# ---- the flashinfer wrappers' plan cache (flashinfer itself is the GPU boundary) --------------
class _CountingWrapper:
    plans = 0

    def __init__(self, workspace, kv_layout="NHD"):
        self.workspace = workspace

    def plan(self, **kwargs):
        type(self).plans += 1

    def run(self, q, kv, out=None, lse=None, return_lse=False):
        out.fill_(1.0)
        lse.fill_(2.0)


def test_flashinfer_wrappers_plan_once_per_layout(monkeypatch):
    import types

    import torch

    fake = types.ModuleType("flashinfer")
    fake.BatchDecodeWithPagedKVCacheWrapper = _CountingWrapper
    _CountingWrapper.plans = 0
    monkeypatch.setitem(sys.modules, "flashinfer", fake)
    row = solutions([ops.gqa_paged_decode(8, 2, 32, 4)])
    fi = next(r for r in row if r["name"].endswith("__flashinfer"))
    from fib_data.executor import build_solution

    run = build_solution(fi | {"content_hash": "feed" + fi["content_hash"][4:]})
    q, cache = torch.zeros(2, 8, 32), torch.zeros(6, 4, 2, 32)
    indptr, indices, last = torch.tensor([0, 1, 3]), torch.tensor([4, 0, 2]), torch.tensor([2, 4])
    out, lse = torch.empty(2, 8, 32), torch.empty(2, 8)
    for _ in range(3):
        run(q, cache, cache, indptr, indices, last, 0.1, out, lse)
    assert _CountingWrapper.plans == 1 and bool((out == 1).all())
    last[0] = 3  # same tensor, new contents: its version counter moved
    run(q, cache, cache, indptr, indices, last, 0.1, out, lse)
    assert _CountingWrapper.plans == 2
    run(q, cache, cache, indptr.clone(), indices, last, 0.1, out, lse)  # equal values, new tensor
    assert _CountingWrapper.plans == 3
    run(q, cache, cache, indptr, indices, last, 0.2, out, lse)  # another sm_scale: another wrapper
    assert _CountingWrapper.plans == 4


# ---- GPU: flashinfer and cuda rows against the reference ---------------------------------------
GPU_KINDS = {"flashinfer", "cuda", "triton", "torch_compile"}


@pytest.mark.gpu
@pytest.mark.parametrize("definition,variant", _cases(
    [d for d in SHIPPED if not d["name"].startswith("moe_")], GPU_KINDS))
def test_gpu_solutions_match_reference(definition, variant, store):
    if variant.name == "flashinfer":
        pytest.importorskip("flashinfer")
    row = solution_row(definition, variant)
    for workload in default_workloads(definition, store, profile="cpu"):
        outcome = check(definition, row, workload, store, "cuda")
        assert outcome.status == "PASSED", (row["name"], workload["axes"], outcome)



@pytest.mark.gpu
@pytest.mark.parametrize("row", [r for r in ROWS if r["language"] == "cuda"], ids=lambda r: r["name"])
def test_cuda_rows_also_build_with_load_inline(row):
    """The .cu text alone is a complete torch extension: load_inline needs no generated bindings."""
    import torch
    from torch.utils.cpp_extension import load_inline

    from fib_data.executor.inputs import shape_of
    from fib_data.executor.reference import load_reference

    module = load_inline(name=f"fib_inline_{row['content_hash'][:12]}", cpp_sources="",
                         cuda_sources=[row["sources"][0]["content"]], extra_cuda_cflags=["-O3"])
    definition = BY_NAME[row["definition"]]
    axes = {a["name"]: a["value"] for a in definition["axes"]} | {"batch_size": 5}
    args = [torch.randn(shape_of(i, axes), device="cuda").bfloat16() for i in definition["inputs"]]
    out = torch.empty(shape_of(definition["outputs"][0], axes), device="cuda", dtype=torch.bfloat16)
    module.run(*args, out)
    (want,) = load_reference(definition)(*args)
    torch.testing.assert_close(out.float(), want.float(), atol=1e-2, rtol=1e-2)
