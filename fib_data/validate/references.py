"""Workloads, solutions and evaluations point at rows that exist, and agree on the definition."""

from __future__ import annotations

from ..errors import Problem
from .context import Context
from .loading import Row


def check(ctx: Context) -> list[Problem]:
    problems = []
    for row in ctx.workloads + ctx.solutions:
        if row.data["definition"] not in ctx.by_name:
            problems.append(row.problem("definition", "no such definition", row.data["definition"]))
    return problems


def evaluation(row: Row, ctx: Context) -> list[Problem]:
    data = row.data
    problems = []
    if data["definition"] not in ctx.by_name:
        problems.append(row.problem("definition", "no such definition", data["definition"]))
    for fld, target, kind in (("workload_uuid", ctx.workload_by_uuid, "workload"),
                              ("solution", ctx.solution_by_name, "solution")):
        found = target.get(data[fld])
        if found is None:
            problems.append(row.problem(fld, f"no such {kind}", data[fld]))
        elif found["definition"] != data["definition"]:
            problems.append(row.problem(fld, f"{kind} is of {found['definition']}, "
                                        f"not {data['definition']}", data[fld]))
    return problems
