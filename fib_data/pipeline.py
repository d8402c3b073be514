"""The README's main job: build the dataset, check it, and show what is in it."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console


def run_demo(root: Path, console: Console) -> None:
    from .cli import print_rows
    from .curated.build import build_dataset
    from .summary import summarize

    ds = build_dataset(root)
    console.print(f"built {ds.root}")
    for title, columns, rows in summarize(ds):
        print_rows(title, columns, rows)
