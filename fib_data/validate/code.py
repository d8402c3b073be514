"""Code: references parse and define ``run``, entry points name a source file (and, for Python,
a function in it), constraints parse and hold for every workload whose values they can see."""

from __future__ import annotations

import ast
import json

from ..blobs import BlobError
from ..errors import Problem
from .context import Context, axis_values
from .loading import Row

_SAFE_NODES = (ast.Expression, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.UnaryOp,
               ast.BoolOp, ast.Compare, ast.Subscript, ast.Slice, ast.Call, ast.Attribute,
               ast.Tuple, ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.IfExp)
_SAFE_CALLS = {"len": len, "min": min, "max": max, "abs": abs, "int": int, "sum": sum}
#: Read-only tensor methods that constraints use (``kv_indptr[-1].item()``, ``(x > 0).all()``).
_SAFE_ATTRIBUTES = {"item", "shape", "all", "any", "sum", "min", "max", "numel", "size", "dim",
                    "ndim"}


def check(ctx: Context) -> list[Problem]:
    problems = [p for r in ctx.definitions for p in reference(r)]
    problems += [p for r in ctx.solutions for p in entry_point(r)]
    compiled = {r.data["name"]: _compile_constraints(r, problems) for r in ctx.definitions}
    for row in ctx.workloads:
        d = ctx.by_name.get(row.data["definition"])
        if d is not None:
            problems += constraints_hold(row, d, compiled[d["name"]], ctx)
    return problems


def _defines(tree: ast.Module, name: str) -> bool:
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name
               for n in tree.body)


def reference(row: Row) -> list[Problem]:
    try:
        tree = ast.parse(row.data["reference"])
    except SyntaxError as exc:
        return [row.problem("reference", f"does not parse: {exc.msg} (line {exc.lineno})")]
    if not _defines(tree, "run"):
        return [row.problem("reference", "defines no top-level function `run`")]
    return []


def entry_point(row: Row) -> list[Problem]:
    ep = row.data["entry_point"]
    if ep.count("::") != 1:
        return [row.problem("entry_point", "must be file::function", ep)]
    path, func = ep.split("::")
    sources = {s["path"]: s["content"] for s in row.data["sources"]}
    if path not in sources:
        return [row.problem("entry_point", f"names {path!r}, which is not among the sources "
                            f"({', '.join(sources)})", ep)]
    if not path.endswith(".py"):
        return []
    try:
        tree = ast.parse(sources[path])
    except SyntaxError as exc:
        return [row.problem("sources", f"{path} does not parse: {exc.msg} (line {exc.lineno})")]
    if not _defines(tree, func):
        return [row.problem("entry_point", f"{path} defines no top-level function {func!r}", ep)]
    return []


def _compile_constraints(row: Row, problems: list[Problem]) -> list[tuple[str, object, set[str]]]:
    out = []
    for text in row.data.get("constraints") or []:
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            problems.append(row.problem("constraints", f"not an expression: {exc.msg}", text))
            continue
        bad = _unsafe(tree)
        if bad:
            problems.append(row.problem("constraints", f"uses {bad}, which constraints may not",
                                        text))
            continue
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(_SAFE_CALLS)
        known = {a["name"] for a in row.data["axes"]} | {t["name"] for t in row.data["inputs"]}
        if names - known:
            problems.append(row.problem("constraints", "names neither an axis nor an input: "
                                        + ", ".join(sorted(names - known)), text))
            continue
        out.append((text, compile(tree, "<constraint>", "eval"), names))
    return out


def _unsafe(tree: ast.AST) -> str | None:
    # Constraints come with downloaded data: evaluate only arithmetic, comparisons, indexing.
    for node in ast.walk(tree):
        if not isinstance(node, _SAFE_NODES):
            return type(node).__name__
        if isinstance(node, ast.Attribute) and node.attr not in _SAFE_ATTRIBUTES:
            return f".{node.attr}"
        if isinstance(node, ast.Call) and not (
                isinstance(node.func, ast.Attribute)
                or (isinstance(node.func, ast.Name) and node.func.id in _SAFE_CALLS)):
            return "a call"
    return None


def constraints_hold(row: Row, d: dict, constraints, ctx: Context) -> list[Problem]:
    problems = []
    values: dict[str, object] = dict(axis_values(d, row.data))
    blobs = {i["name"]: i for i in row.data["inputs"] if i["type"] == "safetensors"}
    scalars = {i["name"]: i["value"] for i in row.data["inputs"] if i["type"] == "scalar"}
    for text, code, names in constraints:
        env = {n: values[n] for n in names if n in values}
        missing = names - env.keys()
        for name in list(missing):
            if name in scalars:
                env[name] = json.loads(scalars[name])
            elif name in blobs:
                env[name] = _tensor(ctx, blobs[name])
            if env.get(name) is not None:
                missing.discard(name)
        if missing:
            continue  # a random input or an unset axis: nothing to check against
        try:
            ok = eval(code, {"__builtins__": {}, **_SAFE_CALLS}, env)  # noqa: S307 - AST checked
        except Exception as exc:  # noqa: BLE001 - any failure is the data's problem
            problems.append(row.problem("axes", f"constraint {text!r} fails to evaluate: {exc}"))
            continue
        if not ok:
            problems.append(row.problem("axes", f"violates constraint {text!r} of {d['name']}",
                                        {n: _short(env[n]) for n in names}))
    return problems


def _tensor(ctx: Context, inp: dict):
    try:
        # torch, as the executor and the constraint authors see inputs (bf16 included)
        return ctx.ds.blobs.load(inp["sha256"], framework="torch").get(inp["tensor_key"])
    except (BlobError, ValueError, TypeError):
        return None  # missing or corrupt blobs are reported by the blob check


def _short(value: object) -> object:
    return value if isinstance(value, (int, float)) else f"<{type(value).__name__}>"
