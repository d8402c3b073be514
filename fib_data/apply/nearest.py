"""Nearest evaluated shape for a live call.

Distance between a call's var axes ``a`` and a bucket's ``b`` (same axis order):

    d(a, b) = sum_i  w_i * | log2(1 + a_i) - log2(1 + b_i) |

Log space because kernel cost and tile choices scale with magnitude, not offset: batch 3 is
nearer to 4 than to 1, and 1000 is as near to 2000 as 1 is to 2. ``1 +`` keeps zero-sized axes
finite. ``w_i`` defaults to 1; an adapter can weigh an axis 0 when it does not shape the work
(e.g. ``num_pages``, the size of the whole KV pool). Ties go to the bucket listed first, i.e. the
smallest axes in lexicographic order, so the choice is deterministic.
"""

from __future__ import annotations

import math
from typing import Sequence

from .table import Bucket


def distance(a: Sequence[int], b: Sequence[int], weights: Sequence[float]) -> float:
    return sum(w * abs(math.log2(1 + x) - math.log2(1 + y)) for x, y, w in zip(a, b, weights) if w)


def nearest(axes: Sequence[int], buckets: Sequence[Bucket],
            weights: Sequence[float] | None = None) -> tuple[Bucket | None, float]:
    """The nearest bucket and its distance; (None, inf) when there is none."""
    weights = weights if weights is not None else [1.0] * len(axes)
    best, best_d = None, math.inf
    for b in buckets:
        d = distance(axes, b.axes, weights)
        if d < best_d:
            best, best_d = b, d
    return best, best_d
