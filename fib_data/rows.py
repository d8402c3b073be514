"""Rows (plain dicts) <-> Arrow tables, checked against the schema field by field.

Conversion errors name the row and the field, which pyarrow alone does not.
"""

from __future__ import annotations

from typing import Any, Iterable

import pyarrow as pa

from .errors import DataError, Problem
from .schema import KEYS, enum_values, schema_of


def to_arrow(table: str, rows: Iterable[dict[str, Any]] | pa.Table, file: str = "<rows>",
             first_row: int = 0) -> pa.Table:
    """Build a table with the exact schema, or raise DataError listing every bad field."""
    schema = schema_of(table)
    if isinstance(rows, pa.Table):
        arrow = _cast(rows, schema, table, file)
    else:
        rows = list(rows)
        problems = [p for i, r in enumerate(rows) for p in _row_problems(table, r, file, first_row + i)]
        if problems:
            raise DataError(problems, f"{file}: rows do not fit the {table} schema")
        arrow = pa.Table.from_pylist(rows, schema=schema)
    problems = check_values(table, arrow, file, first_row)
    if problems:
        raise DataError(problems, f"{file}: rows do not fit the {table} schema")
    return arrow


def _cast(arrow: pa.Table, schema: pa.Schema, table: str, file: str) -> pa.Table:
    missing = [f.name for f in schema if f.name not in arrow.column_names]
    extra = [n for n in arrow.column_names if n not in schema.names]
    problems = [Problem(table, file, None, n, "column missing") for n in missing
                if not schema.field(n).nullable]
    problems += [Problem(table, file, None, n, "column not in the schema") for n in extra]
    if problems:
        raise DataError(problems, f"{file}: columns do not fit the {table} schema")
    cols = [arrow[f.name] if f.name in arrow.column_names else pa.nulls(arrow.num_rows, f.type)
            for f in schema]
    try:
        return pa.Table.from_arrays([c.cast(f.type) for c, f in zip(cols, schema)], schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise DataError([Problem(table, file, None, "*", f"cannot cast: {exc}")]) from None


def _row_problems(table: str, row: Any, file: str, index: int) -> list[Problem]:
    schema = schema_of(table)
    if not isinstance(row, dict):
        return [Problem(table, file, index, "*", "row is not an object", type(row).__name__)]
    problems = [Problem(table, file, index, k, "field not in the schema") for k in row
                if k not in schema.names]
    for field in schema:
        value = row.get(field.name)
        if value is None and not field.nullable:
            problems.append(Problem(table, file, index, field.name, "required field is missing"))
            continue
        if value is None:
            continue
        try:
            pa.array([value], type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            problems.append(Problem(table, file, index, field.name,
                                    f"wrong type for {field.type}: {exc}", value))
    return problems


def check_values(table: str, arrow: pa.Table, file: str = "<rows>", first_row: int = 0) -> list[Problem]:
    """Non-null and enum checks, including fields nested in structs and lists of structs."""
    problems: list[Problem] = []
    for field in schema_of(table):
        leaves = [leaf for leaf in _leaves(field) if not leaf[2] or leaf[3]]
        if not leaves:
            continue
        values = arrow[field.name].to_pylist()
        for path, _, nullable, allowed in leaves:
            for i, v in _flatten(values, path):
                if v is None and not nullable:
                    problems.append(Problem(table, file, first_row + i, path, "required value is null"))
                elif v is not None and allowed and v not in allowed:
                    problems.append(Problem(table, file, first_row + i, path,
                                            f"must be one of {', '.join(allowed)}", v))
    return problems


def _leaves(field: pa.Field, prefix: str = ""):
    """(dotted path, _, nullable, enum) for the field and every struct member below it."""
    path = prefix + field.name
    yield path, None, field.nullable, enum_values(field)
    inner = field.type
    if pa.types.is_list(inner):
        inner = inner.value_type
    if pa.types.is_struct(inner):
        for child in inner:
            yield from _leaves(child, path + ".")


def _flatten(values: list, path: str):
    """Yield (row index, value) of a dotted path through lists and structs."""
    parts = path.split(".")[1:]
    for i, v in enumerate(values):
        for leaf in _walk(v, parts):
            yield i, leaf


def _walk(value, parts):
    if not parts:
        yield value
        return
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            yield from _walk(item, parts)
        return
    yield from _walk(value.get(parts[0]) if isinstance(value, dict) else None, parts[1:])


def duplicate_keys(table: str, arrow: pa.Table) -> dict[tuple, list[int]]:
    """Key -> row indices, for every key that occurs more than once."""
    cols = [arrow[k].to_pylist() for k in KEYS[table]]
    seen: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(*cols)):
        seen.setdefault(key, []).append(i)
    return {k: v for k, v in seen.items() if len(v) > 1}
