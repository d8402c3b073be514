"""HTML pieces of the report: a page shell, tables from polars frames, links."""

from __future__ import annotations

import math
import re
from datetime import datetime
from html import escape
from typing import Callable


def slug(name: str) -> str:
    """A file name for a definition page (names are identifiers, but never trust a path)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


def fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def page(title: str, body: str, root: str = "") -> str:
    """A whole page; ``root`` is the relative path back to the site's top folder."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{root}assets/style.css">
<script src="{root}assets/sort.js" defer></script>
</head><body>
<nav><a href="{root}index.html">fib-data report</a></nav>
<h1>{escape(title)}</h1>
{body}
</body></html>
"""


def table(frame, columns: list[str] | None = None, css: str = "sortable",
          links: dict[str, Callable[[dict], str]] | None = None, attrs: dict[str, str] | None = None,
          highlight: Callable[[dict], bool] | None = None) -> str:
    """A sortable table of the frame's rows; ``links`` maps a column to a row -> href function."""
    columns = columns or frame.columns
    links = links or {}
    extra = "".join(f' {k}="{escape(v)}"' for k, v in (attrs or {}).items())
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in frame.iter_rows(named=True):
        cells = []
        for c in columns:
            value = row[c]
            text = escape(fmt(value))
            if c in links and value is not None:
                text = f'<a href="{escape(links[c](row))}">{text}</a>'
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            data = f' data-value="{value!r}"' if numeric and value == value else ""
            cells.append(f'<td class="{escape(c)}{" num" if numeric else ""}"{data}>{text}</td>')
        top = ' class="top"' if highlight and highlight(row) else ""
        body.append(f"<tr{top}>{''.join(cells)}</tr>")
    if not body:
        return '<p class="muted">no rows</p>'
    return (f'<div class="scroll"><table class="{css}"{extra}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")
