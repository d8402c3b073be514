"""Axes, shapes, dtypes and inputs: definitions are self-consistent, workloads fit them."""

from __future__ import annotations

import json

from ..errors import Problem
from ..schema import AXIS_KINDS, DTYPES
from .context import Context
from .loading import Row


def check(ctx: Context) -> list[Problem]:
    problems = [p for r in ctx.definitions for p in definition(r)]
    for row in ctx.workloads:
        d = ctx.by_name.get(row.data["definition"])
        if d is not None:
            problems += workload_axes(row, d) + workload_inputs(row, d)
    return problems


def _duplicates(names: list[str]) -> set[str]:
    return {n for n in names if names.count(n) > 1}


def definition(row: Row) -> list[Problem]:
    d = row.data
    problems = []
    axes = {a["name"]: a for a in d["axes"]}
    for name in _duplicates([a["name"] for a in d["axes"]]):
        problems.append(row.problem("axes.name", "axis declared twice", name))
    for a in d["axes"]:
        if a["type"] not in AXIS_KINDS:
            problems.append(row.problem("axes.type", "must be const or var", a["type"]))
        elif a["type"] == "const" and (a["value"] is None or a["value"] < 0):
            problems.append(row.problem(f"axes.{a['name']}.value",
                                        "a const axis needs a non-negative value", a["value"]))
        elif a["type"] == "var" and a["value"] is not None:
            problems.append(row.problem(f"axes.{a['name']}.value", "a var axis has no value",
                                        a["value"]))
    names = [t["name"] for t in d["inputs"] + d["outputs"]]
    for name in _duplicates(names):
        problems.append(row.problem("inputs/outputs", "argument name used twice", name))
    for kind in ("inputs", "outputs"):
        for t in d[kind]:
            for axis in t["shape"] or []:
                if axis not in axes:
                    problems.append(row.problem(f"{kind}.{t['name']}.shape",
                                                "names an axis the definition does not declare",
                                                axis))
            if t["dtype"] not in DTYPES:
                problems.append(row.problem(f"{kind}.{t['name']}.dtype", "unknown dtype",
                                            t["dtype"]))
    for tol in d.get("tolerances") or []:
        if tol["dtype"] not in DTYPES:
            problems.append(row.problem("tolerances.dtype", "unknown dtype", tol["dtype"]))
    return problems


def workload_axes(row: Row, d: dict) -> list[Problem]:
    problems = []
    kinds = {a["name"]: a for a in d["axes"]}
    given = {}
    for a in row.data["axes"]:
        spec = kinds.get(a["name"])
        if a["name"] in given:
            problems.append(row.problem(f"axes.{a['name']}", "axis given twice", a["value"]))
        given[a["name"]] = a["value"]
        if spec is None:
            problems.append(row.problem(f"axes.{a['name']}",
                                        f"{d['name']} has no such axis", a["value"]))
        elif spec["type"] == "const" and a["value"] != spec["value"]:
            problems.append(row.problem(f"axes.{a['name']}",
                                        f"overrides the const value {spec['value']}", a["value"]))
        elif a["value"] is None or a["value"] < 0:
            problems.append(row.problem(f"axes.{a['name']}", "must be a non-negative integer",
                                        a["value"]))
    for name, spec in kinds.items():
        if spec["type"] == "var" and name not in given:
            problems.append(row.problem(f"axes.{name}", "var axis has no value in this workload"))
    return problems


def workload_inputs(row: Row, d: dict) -> list[Problem]:
    problems = []
    declared = [t["name"] for t in d["inputs"]]
    given = [i["name"] for i in row.data["inputs"]]
    for name in sorted(set(declared) - set(given)):
        problems.append(row.problem(f"inputs.{name}", "definition input not given"))
    for name in sorted(set(given) - set(declared)):
        problems.append(row.problem(f"inputs.{name}", f"{d['name']} has no such input"))
    for name in _duplicates(given):
        problems.append(row.problem(f"inputs.{name}", "input given twice"))
    for inp in row.data["inputs"]:
        problems += _input(row, inp)
    return problems


def _input(row: Row, inp: dict) -> list[Problem]:
    fld = f"inputs.{inp['name']}"
    if inp["type"] == "scalar":
        try:
            value = json.loads(inp["value"]) if inp["value"] is not None else None
        except ValueError:
            value = None
        if isinstance(value, (bool, int, float)):
            return []
        return [row.problem(fld + ".value", "a scalar needs a JSON number or bool", inp["value"])]
    if inp["type"] == "safetensors" and not (inp["sha256"] and inp["tensor_key"]):
        return [row.problem(fld, "a safetensors input needs sha256 and tensor_key")]
    return []
