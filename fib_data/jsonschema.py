"""JSON Schema for each table, generated from the Arrow schemas in ``schema.py``.

``schemas/<table>.row.schema.json`` describes one row in its JSON form (as ``fib export-json
--rows`` and the Python API's dict rows see it); ``schemas/<table>.schema.json`` describes a
whole table as a JSON array of such rows. ``fib schemas`` writes them; ``fib schemas --check``
and the test suite fail when the committed files drift from the source.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from .schema import KEYS, SCHEMAS, TABLES, description, enum_values

_BASE = "https://fib-data.dev/schemas/"


def _type_schema(t: pa.DataType) -> dict:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return {"type": "string"}
    if pa.types.is_boolean(t):
        return {"type": "boolean"}
    if pa.types.is_integer(t):
        return {"type": "integer"}
    if pa.types.is_floating(t):
        return {"type": "number"}
    if pa.types.is_timestamp(t):
        return {"type": "string", "format": "date-time"}
    if pa.types.is_list(t):
        return {"type": "array", "items": _field_schema(t.value_field, as_item=True)}
    if pa.types.is_struct(t):
        return _object_schema(list(t))
    raise TypeError(f"no JSON Schema mapping for Arrow type {t}")


def _field_schema(field: pa.Field, as_item: bool = False) -> dict:
    schema = _type_schema(field.type)
    allowed = enum_values(field)
    if allowed:
        schema["enum"] = list(allowed)
    doc = description(field)
    if doc and not as_item:
        schema["description"] = doc
    if field.nullable and not as_item:
        kinds = schema.get("type")
        schema["type"] = [kinds, "null"] if isinstance(kinds, str) else kinds
        if "enum" in schema:
            schema["enum"] = schema["enum"] + [None]
    return schema


def _object_schema(fields: list[pa.Field]) -> dict:
    return {
        "type": "object",
        "properties": {f.name: _field_schema(f) for f in fields},
        "required": [f.name for f in fields if not f.nullable],
        "additionalProperties": False,
    }


def row_schema(table: str) -> dict:
    body = _object_schema(list(SCHEMAS[table]))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{_BASE}{table}.row.schema.json",
        "title": f"fib-data {table} row",
        "description": f"One row of the {table} table. Key: {', '.join(KEYS[table])}.",
        **body,
    }


def table_schema(table: str) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{_BASE}{table}.schema.json",
        "title": f"fib-data {table} table",
        "description": f"The {table} table as a JSON array of rows.",
        "type": "array",
        "items": {"$ref": f"{table}.row.schema.json"},
    }


def rendered() -> dict[str, str]:
    """File name -> exact text for every generated schema file."""
    out = {}
    for table in TABLES:
        out[f"{table}.schema.json"] = json.dumps(table_schema(table), indent=2) + "\n"
        out[f"{table}.row.schema.json"] = json.dumps(row_schema(table), indent=2) + "\n"
    return out


def write(folder: str | Path) -> list[Path]:
    from . import atomic

    folder = Path(folder)
    written = []
    for name, text in rendered().items():
        atomic.write_text(folder / name, text)
        written.append(folder / name)
    return written


def drift(folder: str | Path) -> list[str]:
    """Names of files that are missing or differ from what the source generates."""
    folder = Path(folder)
    stale = [n for n, t in rendered().items()
             if not (folder / n).is_file() or (folder / n).read_text() != t]
    extra = [p.name for p in folder.glob("*.schema.json") if p.name not in rendered()]
    return stale + extra
