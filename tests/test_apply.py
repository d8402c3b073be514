"""fib_data.apply on CPU against a stand-in flashinfer (tests/fake_flashinfer) installed as
``flashinfer`` in sys.modules for the duration of each test.

The dataset is the real seed (``build_dataset``) plus solutions and evaluation rows written here,
with a solution that raises, one that does not build and one recorded as incorrect.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch

import fib_data
from fib_data.apply import apply, build_table
from fib_data.apply.matching import DefinitionSpec, match
from fib_data.apply.nearest import distance, nearest
from fib_data.apply.sample import evaluation_row, solution_row
from fib_data.apply.table import Bucket
from fib_data.curated.build import build_dataset
from fib_data.curated.workloads import make_workload
from fib_data.executor.environment import cpu_name

HW = f"cpu: {cpu_name()}"  # as the executor records CPU hardware
RMS = "rmsnorm_h4096"
DECODE = "gqa_paged_decode_h32_kv8_d128_ps16"

FAST = '''import torch

def run(hidden_states, weight):
    x = hidden_states.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()).to(hidden_states.dtype)
'''
RAISES = '''def run(hidden_states, weight):
    raise RuntimeError("deliberately broken")
'''
NO_BUILD = "def run(hidden_states, weight:\n"
WRONG = '''import torch

def run(hidden_states, weight):
    return torch.zeros_like(hidden_states)
'''
VIA_FLASHINFER = '''import flashinfer

def run(hidden_states, weight):
    return flashinfer.norm.rmsnorm(hidden_states, weight, eps=1e-6)
'''
#: Definitions served in the tests by a solution that is their own reference code.
REFERENCE_SOLVED = ("silu_and_mul_h14336", "rope_llama31_h32_kv8_d128", "gemm_n4096_k4096",
                    "top_k_top_p_sampling_from_probs_v128256",
                    "gqa_paged_prefill_causal_h32_kv8_d128_ps16",
                    "gqa_ragged_prefill_causal_h32_kv8_d128", "mla_paged_decode_h16_ckv512_kpe64_ps1")
DPS = '''import torch

def run(hidden_states, weight, output):
    x = hidden_states.float()
    output.copy_(x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-5) * weight.float())
'''
ADD_NORM = '''import torch

def run(hidden_states, residual, weight):
    x = hidden_states.float() + residual.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()).to(hidden_states.dtype)
'''


def _solution(definition: str, name: str, source: str, dps: bool = False) -> dict:
    return solution_row(definition, name, source, dps=dps)


def _evaluation(sol: dict, workload: dict, status: str, latency: float | None,
                hardware: str = HW, flags: list | None = None) -> dict:
    return evaluation_row(sol, workload, status, latency, hardware=hardware, flags=flags)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    ds = build_dataset(tmp_path_factory.mktemp("apply") / "ds")
    defs = {d["name"]: d for d in ds.read("definitions").to_pylist()}

    def workloads():
        work = {}
        for w in ds.read("workloads").to_pylist():
            work.setdefault(w["definition"], {})[tuple(a["value"] for a in w["axes"])] = w
        return work

    ds.append("workloads", [make_workload(defs[RMS], {"batch_size": b}, ds.blobs, seed=b)
                            for b in (1, 7, 64, 512) if (b,) not in workloads()[RMS]])
    work = workloads()
    rms = work[RMS]
    torch_sol = _solution(RMS, "rms_torch_dps", DPS, dps=True)
    fast, raises, nobuild, wrong = (_solution(RMS, n, src) for n, src in (
        ("rms_fast", FAST), ("rms_raises", RAISES), ("rms_nobuild", NO_BUILD), ("rms_wrong", WRONG)))
    decode = _solution(DECODE, "decode_torch", defs[DECODE]["reference"])
    add = _solution("fused_add_rmsnorm_h4096", "add_rms_torch", ADD_NORM)
    via = _solution("rmsnorm_h7168", "rms7168_via_flashinfer", VIA_FLASHINFER)
    refs = [_solution(name, f"{name}_ref", defs[name]["reference"]) for name in REFERENCE_SOLVED]
    ds.append("solutions", [torch_sol, fast, raises, nobuild, wrong, decode, add, via, *refs])
    rows = []
    for b in (1, 7, 64):
        w = rms[(b,)]
        rows += [_evaluation(torch_sol, w, "PASSED", 1.0), _evaluation(fast, w, "PASSED", 0.5),
                 _evaluation(wrong, w, "INCORRECT_NUMERICAL", 0.01),
                 # faster still, but on other hardware: must not count here
                 _evaluation(wrong, w, "PASSED", 0.001, hardware="NVIDIA H100 80GB HBM3")]
        if b < 64:
            rows += [_evaluation(raises, w, "PASSED", 0.1), _evaluation(nobuild, w, "PASSED", 0.05)]
    rows += [_evaluation(torch_sol, rms[(512,)], "RUNTIME_ERROR", None),
             _evaluation(fast, rms[(512,)], "INCORRECT_NUMERICAL", 0.4),
             _evaluation(wrong, rms[(512,)], "PASSED", 0.3, flags=["input_mutated"])]
    rows += [_evaluation(decode, w, "PASSED", 3.0) for w in work[DECODE].values()]
    for sol in (add, via, *refs):
        rows += [_evaluation(sol, w, "PASSED", 0.7) for w in work[sol["definition"]].values()]
    ds.append("evaluations", rows, name="run-test.parquet")
    return ds


@pytest.fixture
def fake(monkeypatch, tmp_path):
    import fake_flashinfer

    monkeypatch.setitem(sys.modules, "flashinfer", fake_flashinfer)
    monkeypatch.setenv("FIB_DATA_CACHE", str(tmp_path / "cache"))
    fake_flashinfer.CALLS.clear()
    return fake_flashinfer


def _rms_inputs(batch, hidden=4096, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(batch)
    return (torch.randn(batch, hidden, generator=g).to(dtype),
            torch.randn(hidden, generator=g).to(dtype))


def _close(a, b, tol=2e-2):
    return torch.allclose(a.float(), b.float(), atol=tol, rtol=tol)


# ---- table and nearest bucket -----------------------------------------------------------------
def test_table_sql_and_arrow_agree_and_rank_only_correct(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("FIB_DATA_CACHE", str(tmp_path))
    sql = build_table(dataset, HW, engine="sql", cache=False)
    arrow = build_table(dataset, HW, engine="arrow", cache=False)
    assert sql.definitions == arrow.definitions
    merged = build_table(dataset, None, engine="sql", cache=False)
    assert merged.definitions == build_table(dataset, None, engine="arrow", cache=False).definitions
    # across hardware a solution must be correct everywhere it ran: rms_wrong is not
    assert "rms_wrong" not in {c.solution for b in merged.definitions[RMS].buckets for c in b.candidates}
    buckets = {b.axes: b for b in sql.definitions[RMS].buckets}
    assert [c.solution for c in buckets[(1,)].candidates] == [
        "rms_nobuild", "rms_raises", "rms_fast", "rms_torch_dps"]
    assert [c.solution for c in buckets[(64,)].candidates] == ["rms_fast", "rms_torch_dps"]
    assert buckets[(512,)].candidates == [] and buckets[(512,)].evaluated == 3
    # the other hardware's rows are a table of their own
    h100 = build_table(dataset, "NVIDIA H100 80GB HBM3", engine="arrow", cache=False)
    assert [c.solution for c in h100.definitions[RMS].buckets[0].candidates] == ["rms_wrong"]


def test_table_is_cached_by_digest_of_the_files(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("FIB_DATA_CACHE", str(tmp_path))
    first = build_table(dataset, HW)
    assert (tmp_path / "apply_tables" / f"{first.digest}.json").is_file()
    again = build_table(dataset, HW, engine="arrow")
    assert again.digest == first.digest and again.definitions == first.definitions
    assert build_table(dataset, HW, max_atol=1e-4).digest != first.digest


def test_nearest_bucket_is_log_space_distance():
    buckets = [Bucket((1,), [], 0), Bucket((7,), [], 0), Bucket((64,), [], 0), Bucket((512,), [], 0)]
    assert nearest((2,), buckets)[0].axes == (1,)      # |log2 3 - log2 2| < |log2 3 - log2 8|
    assert nearest((6,), buckets)[0].axes == (7,)
    assert nearest((300,), buckets)[0].axes == (512,)  # linear distance would pick 64
    assert nearest((64,), buckets) == (buckets[2], 0.0)
    assert distance((3, 1000), (3, 1), (1.0, 0.0)) == 0.0  # weight 0 ignores an axis
    assert nearest((5,), []) == (None, math.inf)


def test_matching_by_const_axes_dtype_and_eps(dataset):
    specs = [DefinitionSpec.from_row(r) for r in dataset.read("definitions").to_pylist()]
    x, w = _rms_inputs(3)
    spec, axes, _ = match(specs, ("rmsnorm_",), {}, {"hidden_states": x, "weight": w}, {"eps": 1e-5})
    assert spec.name == RMS and axes == (3,)
    x7, w7 = _rms_inputs(2, hidden=7168)
    # DeepSeek-V3's norm: its definition bakes in rms_norm_eps 1e-6
    assert match(specs, ("rmsnorm_",), {}, {"hidden_states": x7, "weight": w7},
                 {"eps": 1e-6})[0].name == "rmsnorm_h7168"
    none, _, why = match(specs, ("rmsnorm_",), {}, {"hidden_states": x.half(), "weight": w.half()},
                         {"eps": 1e-5})
    assert none is None and "dtype float16" in why
    assert "eps=1e-06" in match(specs, ("rmsnorm_",), {}, {"hidden_states": x, "weight": w},
                                {"eps": 1e-6})[2]
    assert "num_qo_heads=4" in match(specs, ("gqa_paged_decode_",), {"num_qo_heads": 4}, {})[2]


# ---- substitution, fallback, blacklisting -----------------------------------------------------
def test_rmsnorm_substitution_fallbacks_and_log(dataset, fake):
    with apply(dataset, hardware=HW, module="flashinfer") as handle:
        x, w = _rms_inputs(1)
        expected = fake.norm._norm(x, w, 1e-5).to(x.dtype)
        # rms_nobuild does not build; rms_raises raises on its first call -> original runs
        before = fake.CALLS["rmsnorm"]
        assert _close(fake.rmsnorm(x, w, eps=1e-5), expected)
        assert fake.CALLS["rmsnorm"] == before + 1
        # the next call at that shape goes to the next correct solution, rms_fast
        out = torch.empty_like(x)
        assert fake.norm.rmsnorm(x, w, 1e-5, out=out) is out and _close(out, expected)
        assert fake.CALLS["rmsnorm"] == before + 1
        # batch 2 -> bucket 1 (raises already blacklisted there); batch 6 -> bucket 7 (raises anew)
        x2, w2 = _rms_inputs(2)
        assert _close(fake.rmsnorm(x2, w2, eps=1e-5), fake.norm._norm(x2, w2, 1e-5))
        assert fake.CALLS["rmsnorm"] == before + 1
        x6, w6 = _rms_inputs(6)
        fake.rmsnorm(x6, w6, eps=1e-5)
        assert fake.CALLS["rmsnorm"] == before + 2
        fake.rmsnorm(x6, w6, eps=1e-5)
        assert fake.CALLS["rmsnorm"] == before + 2
        # batch 300 -> bucket 512 where nothing is correct; eps, dtype, width mismatches
        fake.rmsnorm(*_rms_inputs(300), eps=1e-5)
        fake.rmsnorm(x, w)                                    # flashinfer's default eps 1e-6
        fake.rmsnorm(*_rms_inputs(4, dtype=torch.float16), eps=1e-5)
        fake.rmsnorm(*_rms_inputs(4, hidden=1024), eps=1e-5)
        assert fake.CALLS["rmsnorm"] == before + 6
        log = handle.log_rows()
    actions = [(r["action"], r["solution"]) for r in log]
    assert ("build_failed", "rms_nobuild") in actions
    assert next(r for r in log if r["action"] == "build_failed")["entry"] == "rmsnorm"
    assert actions.count(("raised", "rms_raises")) == 2
    assert ("substitute", "rms_fast") in actions
    reasons = " | ".join(r["reason"] for r in log if r["action"] == "fallback")
    for needle in ("no correct solution at nearest shape {'batch_size': 512}", "eps=1e-06",
                   "dtype float16", "axis hidden_size is 1024"):
        assert needle in reasons
    fast = next(r for r in log if r["solution"] == "rms_fast" and r["call_axes"] == {"batch_size": 1})
    assert fast["calls"] == 2


def test_undo_restores_the_original_objects(dataset, fake):
    dec_cls = fake.BatchDecodeWithPagedKVCacheWrapper
    originals = {"rmsnorm": fake.rmsnorm, "norm.rmsnorm": fake.norm.rmsnorm,
                 "fused": fake.norm.fused_add_rmsnorm, "plan": vars(dec_cls)["plan"],
                 "begin": vars(dec_cls)["begin_forward"], "run": vars(dec_cls)["run"],
                 "lse": vars(dec_cls)["run_return_lse"]}
    handle = fib_data.apply(dataset, hardware=HW, module=fake)
    assert fake.rmsnorm is fake.norm.rmsnorm is not originals["rmsnorm"]
    assert fake.rmsnorm.__wrapped__ is originals["rmsnorm"]
    assert vars(dec_cls)["begin_forward"] is vars(dec_cls)["plan"] is not originals["plan"]
    assert vars(dec_cls)["run_return_lse"] is not originals["lse"]
    handle.undo()
    handle.undo()
    now = {"rmsnorm": fake.rmsnorm, "norm.rmsnorm": fake.norm.rmsnorm,
           "fused": fake.norm.fused_add_rmsnorm, "plan": vars(dec_cls)["plan"],
           "begin": vars(dec_cls)["begin_forward"], "run": vars(dec_cls)["run"],
           "lse": vars(dec_cls)["run_return_lse"]}
    assert all(now[k] is originals[k] for k in originals)


def test_fused_add_rmsnorm_keeps_in_place_semantics(dataset, fake):
    x, w = _rms_inputs(5)
    r = torch.randn_like(x.float()).to(x.dtype)
    x_ref, r_ref = x.clone(), r.clone()
    fake.fused_add_rmsnorm(x_ref, r_ref, w, eps=1e-5)
    with apply(dataset, hardware=HW, module="flashinfer") as handle:
        calls = fake.CALLS["fused_add_rmsnorm"]
        assert fake.fused_add_rmsnorm(x, r, w, eps=1e-5) is None
        assert fake.CALLS["fused_add_rmsnorm"] == calls
        assert handle.log_rows()[-1]["solution"] == "add_rms_torch"
    assert _close(x, x_ref) and torch.equal(r, r_ref)


def _paged(kv_lens, layout="NHD", pages=16, ps=16):
    g = torch.Generator().manual_seed(len(kv_lens))
    n_pages = [(n + ps - 1) // ps for n in kv_lens]
    indptr = torch.tensor([0] + list(torch.tensor(n_pages).cumsum(0)), dtype=torch.int32)
    indices = torch.randperm(pages, generator=g)[: int(indptr[-1])].to(torch.int32)
    last = torch.tensor([n - (p - 1) * ps for n, p in zip(kv_lens, n_pages)], dtype=torch.int32)
    shape = (pages, ps, 8, 128) if layout == "NHD" else (pages, 8, ps, 128)
    kv = (torch.randn(shape, generator=g).bfloat16(), torch.randn(shape, generator=g).bfloat16())
    q = torch.randn(len(kv_lens), 32, 128, generator=g).bfloat16()
    return q, kv, (indptr, indices, last)


@pytest.mark.parametrize("layout", ["NHD", "HND"])
def test_decode_wrapper_plan_and_run(dataset, fake, layout):
    q, kv, (indptr, indices, last) = _paged([20, 33, 5], layout)

    def decode(**plan_kwargs):
        wrapper = fake.BatchDecodeWithPagedKVCacheWrapper(torch.empty(8), kv_layout=layout)
        wrapper.plan(indptr, indices, last, 32, 8, 128, 16, **plan_kwargs)
        return wrapper.run(q, kv, return_lse=True)

    expected = decode()
    with apply(dataset, hardware=HW, module="flashinfer") as handle:
        calls = fake.CALLS["decode.run"]
        out, lse = decode(sm_scale=1 / math.sqrt(128))
        assert fake.CALLS["decode.run"] == calls          # the dataset's solution ran
        decode(pos_encoding_mode="ROPE_LLAMA")             # rope inside attention: original
        assert fake.CALLS["decode.run"] == calls + 1
        wrapper = fake.BatchDecodeWithPagedKVCacheWrapper(torch.empty(8), kv_layout=layout)
        wrapper.plan(indptr, indices, last, 32, 8, 128, 16)
        out2, lse2 = wrapper.run_return_lse(q, kv)        # flashinfer's partialmethod alias
        assert fake.CALLS["decode.run"] == calls + 1
        rows = handle.log_rows()
    assert _close(out, expected[0]) and _close(lse, expected[1], 1e-3)
    assert torch.equal(out2, out) and torch.equal(lse2, lse)
    sub = next(r for r in rows if r["solution"] == "decode_torch")
    assert sub["definition"] == DECODE and sub["call_axes"]["batch_size"] == 3


def test_explain_prints_table_and_log(dataset, fake, capsys):
    with apply(dataset, hardware=HW, module="flashinfer") as handle:
        fake.rmsnorm(*_rms_inputs(64), eps=1e-5)
        text = handle.explain()
    assert text in capsys.readouterr().out
    assert "rmsnorm_h4096  var axes: batch_size" in text
    assert "[batch_size=512]  fallback: 0/3 correct" in text
    assert "rms_fast(0.5) > rms_torch_dps(1)" in text
    assert "rmsnorm -> rmsnorm_h4096 {'batch_size': 64}: rms_fast [1 calls]" in text


@pytest.mark.parametrize("hardware, reason", [
    ("cpu: Other CPU", "no evaluations of rmsnorm_h4096 on cpu: Other CPU"),
    # rms_wrong is PASSED there, but a GPU's table never serves a CPU call
    ("NVIDIA H100 80GB HBM3", "call on cpu, table is for NVIDIA H100 80GB HBM3")])
def test_other_hardware_means_original_everywhere(dataset, fake, hardware, reason):
    with apply(dataset, hardware=hardware, module="flashinfer") as handle:
        x, w = _rms_inputs(1)
        assert _close(fake.rmsnorm(x, w, eps=1e-5), fake.norm._norm(x, w, 1e-5))
        assert fake.CALLS["rmsnorm"] == 1
        assert handle.log_rows()[0]["reason"] == reason


def test_auto_hardware_is_this_machine(dataset, fake):
    with apply(dataset, module="flashinfer") as handle:
        assert handle.hardware == HW
        fake.rmsnorm(*_rms_inputs(64), eps=1e-5)
        assert fake.CALLS["rmsnorm"] == 0


def test_import_fib_data_does_not_import_torch():
    import subprocess

    code = "import sys, fib_data; assert callable(fib_data.apply); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_solution_that_calls_flashinfer_reaches_the_original(dataset, fake):
    x, w = _rms_inputs(3, hidden=7168)
    with apply(dataset, hardware=HW, module="flashinfer") as handle:
        y = fake.rmsnorm(x, w, eps=1e-6)
        assert fake.CALLS["rmsnorm"] == 1            # once, from inside the solution: no recursion
        assert handle.log_rows()[-1]["solution"] == "rms7168_via_flashinfer"
    assert _close(y, fake.norm._norm(x, w, 1e-6))


def _ragged_lens(fake, qo_lens, kv_lens, ps=16):
    q, kv, (indptr, indices, last) = _paged(kv_lens, ps=ps, pages=32)
    q = torch.randn(sum(qo_lens), 32, 128, generator=torch.Generator().manual_seed(4)).bfloat16()
    qo_indptr = torch.tensor([0, *torch.tensor(qo_lens).cumsum(0)], dtype=torch.int32)
    return q, kv, qo_indptr, indptr, indices, last


def _prefill_paged(fake):
    q, kv, qo_indptr, indptr, indices, last = _ragged_lens(fake, [3, 5], [20, 37])
    wrapper = fake.BatchPrefillWithPagedKVCacheWrapper(torch.empty(8))
    wrapper.plan(qo_indptr, indptr, indices, last, 32, 8, 128, 16, causal=True)
    return wrapper.run(q, kv, return_lse=True)


def _prefill_ragged(fake):
    g = torch.Generator().manual_seed(7)
    q = torch.randn(8, 32, 128, generator=g).bfloat16()
    k, v = (torch.randn(57, 8, 128, generator=g).bfloat16() for _ in range(2))
    qo_indptr = torch.tensor([0, 3, 8], dtype=torch.int32)
    kv_indptr = torch.tensor([0, 20, 57], dtype=torch.int32)
    wrapper = fake.BatchPrefillWithRaggedKVCacheWrapper(torch.empty(8))
    wrapper.plan(qo_indptr, kv_indptr, 32, 8, 128, causal=True)
    return wrapper.run(q, k, v, return_lse=True)


def _mla(fake):
    g = torch.Generator().manual_seed(3)
    q_nope = torch.randn(3, 16, 512, generator=g).bfloat16()
    q_pe = torch.randn(3, 16, 64, generator=g).bfloat16()
    ckv = torch.randn(40, 1, 512, generator=g).bfloat16()
    kpe = torch.randn(40, 1, 64, generator=g).bfloat16()
    kv_indptr = torch.tensor([0, 7, 19, 30], dtype=torch.int32)
    kv_indices = torch.randperm(40, generator=g)[:30].to(torch.int32)
    wrapper = fake.BatchMLAPagedAttentionWrapper(torch.empty(8))
    wrapper.plan(torch.arange(4, dtype=torch.int32), kv_indptr, kv_indices, kv_indptr.diff(), 16,
                 512, 64, 1, False, 0.1352, torch.bfloat16, torch.bfloat16)
    return wrapper.run(q_nope, q_pe, ckv, kpe, return_lse=True)


def _rope(fake):
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(5, 32, 128, generator=g).bfloat16(), torch.randn(5, 8, 128, generator=g).bfloat16()
    return fake.apply_llama31_rope_pos_ids(q, k, torch.tensor([0, 1, 2, 900, 9000], dtype=torch.int32),
                                           rope_theta=500000.0)


def _gemm(fake):
    g = torch.Generator().manual_seed(9)
    a, weight = torch.randn(4, 4096, generator=g).bfloat16(), torch.randn(4096, 4096, generator=g).bfloat16()
    return fake.mm_bf16(a, weight.T)  # flashinfer takes b as [k, n] column-major


def _silu(fake):
    return fake.silu_and_mul(torch.randn(3, 28672, generator=torch.Generator().manual_seed(1)).bfloat16())


@pytest.mark.parametrize("definition, calls_key, call", [
    ("silu_and_mul_h14336", "silu_and_mul", _silu),
    ("rope_llama31_h32_kv8_d128", "rope", _rope),
    ("gemm_n4096_k4096", "mm_bf16", _gemm),
    ("gqa_paged_prefill_causal_h32_kv8_d128_ps16", "prefill.run", _prefill_paged),
    ("gqa_ragged_prefill_causal_h32_kv8_d128", "ragged.run", _prefill_ragged),
    ("mla_paged_decode_h16_ckv512_kpe64_ps1", "mla.run", _mla),
])
def test_each_entry_point_is_served_and_matches_the_original(dataset, fake, definition, calls_key, call):
    expected = call(fake)
    with apply(dataset, hardware=HW, module="flashinfer") as handle:
        before = fake.CALLS[calls_key]
        got = call(fake)
        assert fake.CALLS[calls_key] == before, handle.explain()
        served = [r for r in handle.log_rows() if r["action"] == "substitute"]
    assert [r["definition"] for r in served] == [definition]
    expected, got = (expected, got) if isinstance(got, tuple) else ((expected,), (got,))
    assert len(got) == len(expected)
    for e, o in zip(expected, got):
        assert o.shape == e.shape and o.dtype == e.dtype
        assert _close(o, e, 2e-2 if o.dtype == torch.bfloat16 else 2e-3)


def test_sampling_is_served_and_stays_in_the_top_k(dataset, fake):
    probs = torch.softmax(torch.randn(2, 128256, generator=torch.Generator().manual_seed(2)), -1)
    with apply(dataset, hardware=HW, module="flashinfer") as handle:
        samples = fake.top_k_top_p_sampling_from_probs(probs, 5, 0.9)
        assert fake.CALLS["sampling"] == 0
        assert handle.log_rows()[-1]["definition"] == "top_k_top_p_sampling_from_probs_v128256"
        fake.top_k_top_p_sampling_from_probs(probs, 5, 0.9, generator=torch.Generator())
        assert fake.CALLS["sampling"] == 1            # a pinned generator keeps the original
    top5 = probs.topk(5, dim=-1).indices
    assert samples.dtype == torch.int64 and all(s in row for s, row in zip(samples, top5))


def test_a_second_apply_on_the_same_module_is_refused(dataset, fake):
    with apply(dataset, hardware=HW, module="flashinfer"):
        patched = fake.rmsnorm
        with pytest.raises(RuntimeError, match="already active on fake_flashinfer"):
            apply(dataset, hardware=HW, module="flashinfer")
        assert fake.rmsnorm is patched                 # nothing half-installed
    assert not hasattr(fake.rmsnorm, "__fib_apply__")


def test_fib_dispatch_prints_the_table(dataset, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from fib_data.cli import app

    monkeypatch.setenv("FIB_DATA_CACHE", str(tmp_path))
    result = CliRunner().invoke(app, ["dispatch", str(dataset.root), "--hardware", HW,
                                      "--engine", "arrow"])
    assert result.exit_code == 0, result.output
    assert "[batch_size=64]  0.5 ms  2/3 correct: rms_fast(0.5) > rms_torch_dps(1)" in result.output
    assert "[batch_size=512]  fallback: 0/3 correct" in result.output
