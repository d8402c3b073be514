"""Samplers are judged on their draws: support and a binned total-variation distance.

Real workers on CPU, a small-vocabulary stand-in built by the shipped factory (same reference,
same torch solution file), and deliberately wrong samplers that must fail.
"""

from __future__ import annotations

import json
import math

import pytest

import executor_data as data
from fib_data.curated import ops
from fib_data.curated.solutions import solutions
from fib_data.curated.workloads import default_workloads
from fib_data.dataset import Dataset
from fib_data.executor import sampling
from fib_data.executor.bench import BenchOptions, run_bench

OPTIONS = dict(trials=2, reps=64, warmup_ms=1.0, timeout=120.0, build_timeout=0.0, salt="fixed")

ARGMAX = '''import torch


def run(probs, top_k, top_p):
    return probs.argmax(dim=-1)
'''

# Ignores top-k and top-p: samples the raw distribution, so draws leave the kept set.
UNFILTERED = '''import torch


def run(probs, top_k, top_p):
    return torch.multinomial(probs.float(), 1).squeeze(1)
'''

# Right distribution, but one draw per distinct input, replayed on every later call.
REPLAYED = '''import torch

from kept import kept

_SEEN = {}


def run(probs, top_k, top_p):
    key = (probs.shape, float(probs.sum()), float(probs[:, :8].sum()))
    if key not in _SEEN:
        _SEEN[key] = torch.multinomial(kept(probs, top_k, top_p), 1).squeeze(1)
    return _SEEN[key].clone()
'''

# A small bias: the most likely kept token gets 25% extra mass (a "mostly right" sampler).
BIASED = '''import torch

from kept import kept


def run(probs, top_k, top_p):
    p = kept(probs, top_k, top_p)
    p = p + 0.25 * torch.nn.functional.one_hot(p.argmax(-1), p.shape[-1])
    return torch.multinomial(p, 1).squeeze(1)
'''


# Honest on the large tiled batches of the correctness trials, argmax on the real batch (timing).
TILED_ONLY = '''import torch

from kept import kept


def run(probs, top_k, top_p):
    if probs.shape[0] > 64:
        return torch.multinomial(kept(probs, top_k, top_p), 1).squeeze(1)
    return probs.argmax(dim=-1)
'''


def _with_kept(definition: dict, name: str, source: str) -> dict:
    """A cheat row that reuses the reference's own filter as a helper file (not a reference call)."""
    row = data.solution(definition, name, source, False)
    helper = definition["reference"].split("@torch.no_grad()")[0].replace("def filtered_probs", "def kept")
    row["sources"].append({"path": "kept.py", "content": helper})
    from fib_data.hashing import solution_hash

    row["content_hash"] = solution_hash(row)
    return row


def _dataset(root, definition, cheats=True) -> Dataset:
    ds = Dataset.create(root, card=False)
    ds.replace("definitions", [definition])
    ds.replace("workloads", default_workloads(definition, ds.blobs, profile="cpu"))
    rows = [r for r in solutions([definition]) if r["name"].endswith("__torch")]
    if cheats:
        rows += [data.solution(definition, "argmax", ARGMAX, False),
                 data.solution(definition, "unfiltered", UNFILTERED, False),
                 _with_kept(definition, "replayed", REPLAYED), _with_kept(definition, "biased", BIASED),
                 _with_kept(definition, "tiled_only", TILED_ONLY)]
    ds.replace("solutions", rows)
    return ds


def _by_solution(rows) -> dict:
    out: dict = {}
    for row in rows:
        out.setdefault(row["solution"].split("__")[-1], []).append(row)
    return out


def test_threshold_is_the_concentration_bound():
    t = sampling.tvd_threshold(4096, 20)
    assert t == pytest.approx(math.sqrt((20 * math.log(2) + math.log(1e9)) / 8192))
    assert 0.06 < t < 0.07
    assert sampling.tvd_threshold(4096, 20, two_sample=True) > 2 * t
    assert sampling.is_sampler(ops.top_k_top_p_sampling(500))
    assert sampling.is_sampler({"op_type": "x", "tags": ["output:samples"]})
    assert not sampling.is_sampler(ops.rmsnorm(64, 1e-6))


def test_rows_are_cut_tiled_and_budgeted():
    import torch

    definition = ops.top_k_top_p_sampling(1000)
    inputs = [torch.rand(40, 1000), torch.arange(40, dtype=torch.int32), torch.rand(40)]
    cut, axes = sampling.first_rows(definition, inputs, {"batch_size": 40, "vocab_size": 1000})
    assert axes["batch_size"] == sampling.ROWS and [len(v) for v in cut] == [sampling.ROWS] * 3
    tiled, tiled_axes = sampling.tile(definition, cut, axes, 3)
    assert tiled_axes["batch_size"] == 3 * sampling.ROWS
    assert tiled[1].tolist() == list(range(sampling.ROWS)) * 3
    assert sampling.draws_per_row(cut, "cuda:0") == sampling.DRAWS_PER_ROW
    big = [torch.zeros(4, 128256), torch.zeros(4, dtype=torch.int32), torch.zeros(4)]
    assert sampling.MIN_DRAWS <= sampling.draws_per_row(big, "cpu") < sampling.DRAWS_PER_ROW


def test_binned_tvd_of_exact_draws_is_small_and_of_argmax_large():
    import torch

    gen = torch.Generator().manual_seed(0)
    dist = torch.softmax(torch.randn(3, 300, generator=gen) * 2, dim=-1)
    dist[:, 200:] = 0
    dist /= dist.sum(-1, keepdim=True)
    honest = torch.multinomial(dist, 4096, replacement=True, generator=gen).t()
    stats = sampling.row_stats(honest, dist)
    assert stats["outside"] == [0, 0, 0] and max(stats["tvd"]) < sampling.tvd_threshold(4096, 20) / 2
    argmax = dist.argmax(-1).expand(4096, 3)
    tvd = sampling.row_stats(argmax, dist)["tvd"]
    assert tvd == pytest.approx((1 - dist.max(-1).values).tolist(), abs=1e-6)
    outside = torch.full((4096, 3), 250)
    assert sampling.row_stats(outside, dist)["outside"] == [4096] * 3
    assert not sampling.verdict({"tvd": tvd, "outside": [0, 0, 0], "draws": 4096})[0]


def test_correct_sampler_passes_and_wrong_ones_fail_in_the_worker(tmp_path):
    definition = ops.top_k_top_p_sampling(500)
    ds = _dataset(tmp_path / "ds", definition)
    result = run_bench(ds.root, devices=["cpu"], options=BenchOptions(**OPTIONS))
    by = _by_solution(result["rows"])
    assert [r["status"] for r in by["torch"]] == ["PASSED", "PASSED"], [r["log"] for r in by["torch"]]
    for row in by["torch"]:
        extra = json.loads(row["correctness_extra"])
        assert extra["sampling"]["bins"] == sampling.BINS
        trial = extra["trials"][0]["outputs"][0]
        assert trial["draws_per_row"] == 4096 and trial["max_outside"] == 0
        assert trial["tvd_threshold"] == pytest.approx(sampling.tvd_threshold(4096, 20))
        assert 0 < trial["max_tvd"] < trial["tvd_threshold"]
        assert row["latency_ms"] > 0 and extra["mismatched_calls"] == 0
        assert extra["sampling"]["timed_ks"] < extra["sampling"]["timed_ks_threshold"]
    reasons = {"argmax": "total-variation distance", "unfiltered": "outside the reference's kept set",
               "replayed": "identical samples", "biased": "total-variation distance"}
    for name, reason in reasons.items():
        statuses = {r["status"] for r in by[name]}
        assert statuses == {"INCORRECT_NUMERICAL"}, (name, [r["log"] for r in by[name]])
        assert all(reason in r["log"] for r in by[name]), (name, by[name][0]["log"])
    # The real batch of 4 rows x 64 timed calls: 256 pooled draws, KS threshold 0.17.
    timed = [r for r in by["tiled_only"] if r["status"] != "PASSED"]
    assert timed and all("KS distance" in r["log"] and "timed_output_mismatch" in r["flags"] for r in timed)


def test_without_a_distribution_hook_the_reference_is_sampled_too(tmp_path):
    definition = ops.top_k_top_p_sampling(300)
    definition["reference"] = definition["reference"].replace("filtered_probs", "_kept")
    ds = _dataset(tmp_path / "ds", definition, cheats=False)
    argmax = data.solution(definition, "argmax", ARGMAX, False)
    ds.replace("solutions", ds.read("solutions").to_pylist() + [argmax])
    result = run_bench(ds.root, devices=["cpu"], options=BenchOptions(**OPTIONS | {"reps": 0}))
    by = _by_solution(result["rows"])
    assert {r["status"] for r in by["torch"]} == {"PASSED"}, [r["log"] for r in by["torch"]]
    trial = json.loads(by["torch"][0]["correctness_extra"])["trials"][0]["outputs"][0]
    assert trial["two_sample"] and trial["max_tvd"] < trial["tvd_threshold"]
    assert {r["status"] for r in by["argmax"]} == {"INCORRECT_NUMERICAL"}
