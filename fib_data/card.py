"""The dataset card: the top-level ``dataset_card.md`` template rendered with live facts.

The YAML ``configs:`` block lets ``datasets.load_dataset(<folder or repo>, <table>)`` find each
table; the field reference is generated from ``schema.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .schema import SCHEMAS, TABLES, description, enum_values

if TYPE_CHECKING:
    from .dataset import Dataset


def template_text() -> str:
    """The card template: the repo's top-level file in a checkout, the packaged copy otherwise."""
    repo_copy = Path(__file__).resolve().parent.parent / "dataset_card.md"
    if repo_copy.is_file():
        return repo_copy.read_text()
    return resources.files("fib_data").joinpath("templates/dataset_card.md").read_text()


def configs_yaml() -> str:
    lines = ["configs:"]
    for table in TABLES:
        lines += [f"- config_name: {table}", "  data_files:", "  - split: train",
                  f"    path: data/{table}/*.parquet"]
        if table == "evaluations":
            lines.append("  default: true")
    return "\n".join(lines)


def field_reference() -> str:
    out = []
    for table in TABLES:
        out.append(f"### `{table}`\n\n| field | type | description |\n|---|---|---|")
        for field in SCHEMAS[table]:
            out += [_field_row(field)]
        out.append("")
    return "\n".join(out)


def _field_row(field: pa.Field, prefix: str = "") -> str:
    allowed = enum_values(field)
    desc = description(field) + (f" One of: {', '.join(allowed)}." if allowed else "")
    req = "" if field.nullable else " (required)"
    rows = [f"| `{prefix}{field.name}` | `{field.type}`{req} | {desc} |"]
    inner = field.type.value_type if pa.types.is_list(field.type) else field.type
    if pa.types.is_struct(inner):
        rows += [_field_row(child, f"{prefix}{field.name}.") for child in inner]
    return "\n".join(rows)


def render_card(ds: "Dataset", **extra: Any) -> str:
    counts = {t: ds.count(t) for t in TABLES}
    facts = {
        "configs": configs_yaml(),
        "name": ds.name,
        "row_counts": "\n".join(f"| {t} | {n} |" for t, n in counts.items()),
        "hardware": ", ".join(_hardware(ds)) or "none yet",
        "snapshot_date": extra.pop("snapshot_date", datetime.now(timezone.utc).date().isoformat()),
        "field_reference": field_reference(),
        "blob_count": str(len(ds.blobs.all())),
    }
    facts.update({k: str(v) for k, v in extra.items()})
    text = template_text()
    for key, value in facts.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _hardware(ds: "Dataset") -> list[str]:
    if not ds.files("evaluations"):
        return []
    col = ds.read("evaluations", columns=["environment"])["environment"]
    return sorted({e["hardware"] for e in col.to_pylist() if e})
