"""``fib validate``: every check over a dataset folder, each problem naming table, file, row, field.

One module per kind of check: keys, references, hashes, axes (and shapes, dtypes, inputs), code
(references, entry points, constraints), blobs, paths.
"""

from __future__ import annotations

import os

from ..dataset import Dataset
from ..errors import Problem
from . import axes, blobs, code, hashes, keys, paths, references
from .context import Context
from .loading import iter_rows, load_rows


def validate_dataset(root: Dataset | str | os.PathLike) -> list[Problem]:
    ds = root if isinstance(root, Dataset) else Dataset(root)
    problems: list[Problem] = []
    ctx = Context(ds, load_rows(ds, "definitions", problems), load_rows(ds, "solutions", problems),
                  load_rows(ds, "workloads", problems))
    for rows in (ctx.definitions, ctx.solutions, ctx.workloads):
        problems += keys.check(rows)
    problems += references.check(ctx)
    problems += hashes.solutions(ctx.solutions)
    problems += axes.check(ctx)
    problems += code.check(ctx)
    problems += paths.check(ctx)
    problems += blobs.check(ctx)
    problems += _evaluations(ctx, problems)
    return problems


def _evaluations(ctx: Context, problems: list[Problem]) -> list[Problem]:
    found: list[Problem] = []
    key_check = keys.KeyCheck("evaluations")
    for row in iter_rows(ctx.ds, "evaluations", problems):
        found += key_check.row(row) + references.evaluation(row, ctx) + hashes.evaluation(row)
    return found


__all__ = ["validate_dataset", "Problem"]
