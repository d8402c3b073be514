"""Correctness for definitions whose output is a random draw (samplers), judged on distributions.

A definition is a sampler when its ``op_type`` is ``sampling`` or it carries the tag
``output:samples``. Its first output holds token ids drawn per row (leading axis: the rows);
comparing them elementwise with the reference's own draws would fail every correct sampler.
Instead, per trial (fresh inputs):

* the exact distribution each row samples from comes from the reference module's hook
  (``distribution(*inputs)`` or ``filtered_probs(*inputs)``: shape ``rows x vocab``); without a
  hook it is estimated from as many reference draws as the solution gets (two-sample test);
* the first ``ROWS`` rows are kept (the full batch is still run, and support-checked, in timing);
* the solution is called repeatedly (at least twice) with fresh ``torch.manual_seed`` values on
  inputs whose rows are tiled (every input with the same leading axis is repeated), until each
  row has ``DRAWS_PER_ROW`` draws, or fewer (not below ``MIN_DRAWS``) where that would exceed the
  device's ``DRAW_BUDGET`` (a 128k vocabulary on a CPU; the threshold follows the draws); two
  calls returning identical samples fail when an honest sampler would do that with probability
  below ``COLLISION_LIMIT`` (a replayed cache);
* support: at most ``OUTSIDE_LIMIT`` of a row's draws may fall where the exact distribution is 0
  (fp32 top-p boundaries computed in another summation order may legitimately keep one more
  tiny-mass token; sampling outside top-k puts whole percents there);
* distribution: tokens are merged into at most ``BINS`` bins of about equal expected mass (heavy
  tokens alone, one more bin for out-of-support draws) and the total-variation distance between
  the solution's bin frequencies and the exact bin masses must stay below ``tvd_threshold``.
  Merging only lowers the TVD (it is a lower bound of the full-vocabulary TVD), but keeps the
  test meaningful when the kept set is larger than the number of draws.

Timed calls (the real batch, one draw per row and call) are checked too: support, no replayed
samples, and the pooled randomised probability integral transform of all their draws against
U(0, 1) (Kolmogorov-Smirnov, DKW threshold at ``DELTA_POOLED``), so a sampler that behaves only
on the tiled batches of the trials still fails.

The threshold is the Bretagnolle-Huber-Carol bound: for ``n`` draws over ``k`` bins,
P(TVD >= t) <= 2^k exp(-2 n t^2), so t = sqrt((k ln 2 + ln(1/delta)) / (2 n)) makes a false
failure of a correct sampler at most ``delta`` = 1e-9 per row. With k = 20 and n = 4096 that is
t = 0.065: a correct sampler essentially never fails, and a sampler whose distribution is off by
more than that fails (always-argmax is off by 1 - p_max: >= 0.54 on every row of the shipped
128k-vocabulary inputs; measured honest maximum over 96 such rows: 0.035).
Upstream flashinfer-bench uses a fixed TVD of 0.2 with 500k draws over the full vocabulary.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

SAMPLE_TAG = "output:samples"
HOOKS = ("distribution", "filtered_probs")
DRAWS_PER_ROW = 4096
MIN_DRAWS = 192
#: Input bytes a sampler may be fed per trial (draws x judged rows x bytes per row): a 128k
#: vocabulary gets the full 4096 draws for 16 rows on a GPU, and 192-500 draws for 1-4 rows on a
#: CPU (threshold 0.30-0.19, still below always-argmax's 0.54+; ~20-40 s a trial on 2 cores).
DRAW_BUDGET = {"cuda": 64 << 30, "cpu": 256 << 20}
#: Rows judged per trial (the first ones); timed calls still run and are checked on the full batch.
ROWS = 16
BINS = 20
DELTA = 1e-9
OUTSIDE_LIMIT = 1e-3
#: Bytes of tiled inputs per call; bounds memory for a 128k vocabulary (~500 rows per call).
TILE_BYTES = 256 << 20
#: Two calls on the same inputs returning identical samples is suspicious (a cache) once the
#: chance of that happening honestly is below this.
COLLISION_LIMIT = 1e-6
#: False-failure bound of the pooled test on timed calls (one test per evaluation).
DELTA_POOLED = 1e-6


def is_sampler(definition: Mapping) -> bool:
    return definition.get("op_type") == "sampling" or SAMPLE_TAG in (definition.get("tags") or [])


def tvd_threshold(draws: int, bins: int, two_sample: bool = False, delta: float = DELTA) -> float:
    """TVD a correct sampler exceeds with probability <= delta (Bretagnolle-Huber-Carol)."""
    if two_sample:  # TVD(f, g) <= TVD(f, p) + TVD(g, p), each at delta / 2
        return 2 * tvd_threshold(draws, bins, False, delta / 2)
    return math.sqrt((bins * math.log(2) + math.log(1 / delta)) / (2 * max(draws, 1)))


def exact_distribution(module: Any, inputs: Sequence[Any]):
    """rows x vocab probabilities from the reference's hook, or None without one."""
    for name in HOOKS:
        hook = getattr(module, name, None)
        if callable(hook):
            return hook(*inputs).float()
    return None


def row_axis(definition: Mapping) -> str | None:
    shape = definition["outputs"][0].get("shape") or []
    var = {a["name"] for a in definition["axes"] if a["type"] == "var"}
    return shape[0] if shape and shape[0] in var else None


def first_rows(definition: Mapping, inputs: Sequence[Any], axes: Mapping[str, int], rows: int = ROWS):
    """Inputs cut to their first ``rows`` rows (each row is judged alone; cost grows with rows)."""
    import torch

    axis = row_axis(definition)
    if axis is None or axes[axis] <= rows:
        return list(inputs), dict(axes)
    out = [v[:rows] if isinstance(v, torch.Tensor) and (spec.get("shape") or [None])[0] == axis else v
           for spec, v in zip(definition["inputs"], inputs)]
    return out, {**axes, axis: rows}


def tile(definition: Mapping, inputs: Sequence[Any], axes: Mapping[str, int], copies: int):
    """Inputs with every row-indexed tensor repeated ``copies`` times, and the matching axes."""
    import torch

    axis = row_axis(definition)
    if axis is None or copies == 1:
        return list(inputs), dict(axes)
    out = []
    for spec, value in zip(definition["inputs"], inputs):
        if isinstance(value, torch.Tensor) and (spec.get("shape") or [None])[0] == axis:
            value = value.repeat(copies, *([1] * (value.dim() - 1)))
        out.append(value)
    return out, {**axes, axis: axes[axis] * copies}


def draws_per_row(inputs: Sequence[Any], device: str) -> int:
    """Draws per judged row within the device's budget, between MIN_DRAWS and DRAWS_PER_ROW."""
    import torch

    size = sum(v.numel() * v.element_size() for v in inputs if isinstance(v, torch.Tensor))
    budget = DRAW_BUDGET["cuda" if device.startswith("cuda") else "cpu"]
    return max(MIN_DRAWS, min(DRAWS_PER_ROW, budget // max(size, 1)))


def copies_per_call(definition: Mapping, inputs: Sequence[Any], draws: int = DRAWS_PER_ROW) -> int:
    import torch

    if row_axis(definition) is None:
        return 1
    size = sum(v.numel() * v.element_size() for v in inputs if isinstance(v, torch.Tensor))
    # At least two calls, so a sampler that replays its draws for inputs it has seen shows.
    return max(1, min(math.ceil(draws / 2), TILE_BYTES // max(size, 1)))


def draw(call: Callable[[], Any], rows: int, copies: int, seed: int,
         draws: int = DRAWS_PER_ROW) -> tuple[Any, Any, bool]:
    """Call a sampler (on inputs tiled ``copies`` times) with fresh seeds until every row has
    ``draws`` draws: (first raw output, draws x rows samples or None, whether two consecutive
    calls returned identical samples)."""
    import torch

    first, chunks, repeated = None, [], False
    for i in range(math.ceil(draws / copies)):
        torch.manual_seed(seed + i)
        out = call()
        first = out if first is None else first
        if not isinstance(out, torch.Tensor) or out.numel() != rows * copies:
            return first, None, False
        chunk = out.reshape(copies, rows).clone()
        repeated = repeated or bool(chunks and chunks[-1].equal(chunk))
        chunks.append(chunk)
    return first, torch.cat(chunks)[:draws], repeated


def bin_table(dist):
    """rows x vocab bin index: equal-mass bins over the sorted distribution; BINS-1 = outside."""
    import torch

    sorted_p, order = dist.sort(dim=-1, descending=True)
    before = sorted_p.cumsum(dim=-1) - sorted_p
    bins = (before * (BINS - 1)).floor().clamp(0, BINS - 2).long()
    bins = torch.where(sorted_p > 0, bins, torch.full_like(bins, BINS - 1))
    return torch.empty_like(bins).scatter_(1, order, bins)


def row_stats(samples, dist, reference_samples=None) -> dict:
    """Per-row outside counts and binned TVD of ``samples`` (draws x rows) against ``dist``."""
    import torch

    draws, rows = samples.shape
    vocab = dist.shape[-1]
    ids = samples.long().t()  # rows x draws
    in_range = (ids >= 0) & (ids < vocab)
    safe = ids.clamp(0, vocab - 1)
    outside = (~in_range | (dist.gather(1, safe) <= 0)).sum(dim=1)
    table = bin_table(dist)
    got = _bin_counts(torch.where(in_range, table.gather(1, safe), BINS - 1), rows) / draws
    if reference_samples is None:
        want = torch.zeros(rows, BINS, dtype=torch.float64, device=dist.device)
        want.scatter_add_(1, table, dist.double())
    else:
        ref = reference_samples.long().t().clamp(0, vocab - 1)
        want = _bin_counts(table.gather(1, ref), rows) / reference_samples.shape[0]
    tvd = 0.5 * (got - want).abs().sum(dim=1)
    return {"tvd": tvd.tolist(), "outside": outside.tolist(), "draws": draws}


def _bin_counts(bins, rows: int):
    import torch

    counts = torch.zeros(rows, BINS, dtype=torch.float64, device=bins.device)
    return counts.scatter_add_(1, bins, torch.ones_like(bins, dtype=torch.float64))


def uniforms(samples, dist, seed: int = 0):
    """Randomised probability integral transform of draws (draws x rows) under ``dist``: the mass
    of tokens ranked before the drawn one plus a uniform share of its own mass. Honest draws give
    i.i.d. U(0, 1) values whatever the rows' distributions, so one draw per row and call pools."""
    import torch

    sorted_p, order = dist.double().sort(dim=-1, descending=True)
    before = torch.empty_like(sorted_p).scatter_(1, order, sorted_p.cumsum(dim=-1) - sorted_p)
    ids = samples.long().t().clamp(0, dist.shape[-1] - 1)
    gen = torch.Generator(device=dist.device).manual_seed(seed)
    jitter = torch.rand(ids.shape, generator=gen, device=dist.device, dtype=torch.float64)
    return (before.gather(1, ids) + jitter * dist.double().gather(1, ids)).reshape(-1)


def ks_uniform(values) -> float:
    """Kolmogorov-Smirnov distance of values from U(0, 1)."""
    import torch

    u = values.double().sort().values.clamp(0, 1)
    n = u.numel()
    if not n:
        return 0.0
    steps = torch.arange(1, n + 1, dtype=torch.float64, device=u.device) / n
    return float(torch.maximum(steps - u, u - (steps - 1 / n)).max())


def ks_threshold(n: int, delta: float = DELTA_POOLED) -> float:
    """Dvoretzky-Kiefer-Wolfowitz: P(KS > e) <= 2 exp(-2 n e^2)."""
    return math.sqrt(math.log(2 / delta) / (2 * max(n, 1)))


def log_collision(dist) -> float:
    """ln of the chance that two honest draws of every row coincide: sum over rows of ln sum p^2."""
    return float(dist.double().square().sum(dim=1).clamp_min(1e-300).log().sum())


def method() -> dict:
    """How samplers were judged, for an evaluation's correctness_extra."""
    return {"check": "support + binned total-variation distance", "bins": BINS, "rows_judged": ROWS,
            "draws_per_row": [MIN_DRAWS, DRAWS_PER_ROW], "draw_budget_bytes": DRAW_BUDGET,
            "false_fail_bound_per_row": DELTA, "outside_limit": OUTSIDE_LIMIT,
            "threshold": "sqrt((bins ln2 + ln(1/delta)) / (2 draws)), doubled without a hook"}


def verdict(stats: Mapping) -> tuple[bool, str]:
    """(ok, why) for one output's sampling stats, thresholds decided here (in the parent)."""
    draws = stats["draws"]
    limit = OUTSIDE_LIMIT * draws
    worst = max(stats["outside"], default=0)
    if worst > limit:
        row = stats["outside"].index(worst)
        return False, (f"row {row}: {worst}/{draws} draws outside the reference's kept set "
                       f"(limit {OUTSIDE_LIMIT:g})")
    if stats.get("tvd") is not None:
        threshold = tvd_threshold(draws, BINS, bool(stats.get("two_sample")))
        tvd = max(stats["tvd"], default=0.0)
        if tvd > threshold:
            row = stats["tvd"].index(tvd)
            return False, (f"row {row}: total-variation distance {tvd:.3f} from the reference's "
                           f"distribution over {draws} draws exceeds {threshold:.3f}")
    if stats.get("ks") is not None and stats["ks"] > ks_threshold(stats["ks_draws"]):
        return False, (f"draws of the timed calls do not follow the reference's distribution: KS "
                       f"distance {stats['ks']:.3f} over {stats['ks_draws']} draws exceeds "
                       f"{ks_threshold(stats['ks_draws']):.3f}")
    if stats.get("repeated") and stats.get("log_collision", 0.0) < math.log(COLLISION_LIMIT):
        return False, ("repeated calls on the same inputs returned identical samples "
                       f"(chance for an honest sampler: e^{stats['log_collision']:.0f})")
    return True, ""
