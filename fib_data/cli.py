"""The ``fib`` command: one thin function per verb; the work lives in the feature modules."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .dataset import DEFAULT_DATASET

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="fib-data: GPU-kernel benchmarks for LLM serving as a dataset.")
console = Console()
err = Console(stderr=True)

DatasetArg = typer.Argument(DEFAULT_DATASET, help="Dataset folder.")


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def print_rows(title: str, columns: list[str], rows: list[tuple]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


@app.command()
def schemas(out: Path = typer.Option(Path("schemas"), help="Folder for the JSON Schema files."),
            check: bool = typer.Option(False, help="Only report drift; exit 1 if any.")) -> None:
    """Write (or check) schemas/*.schema.json, generated from fib_data/schema.py."""
    from . import jsonschema

    if check:
        stale = jsonschema.drift(out)
        if stale:
            _fail(f"schemas out of date: {', '.join(stale)}; run `fib schemas`")
        console.print(f"schemas in {out} match the source")
        return
    for path in jsonschema.write(out):
        console.print(f"wrote {path}")


@app.command()
def info(dataset: Path = DatasetArg) -> None:
    """Row counts and per-definition summary, via DuckDB over the Parquet files."""
    from .dataset import Dataset
    from .summary import summarize

    try:
        ds = Dataset(dataset)
    except FileNotFoundError as exc:
        _fail(str(exc))
    for title, columns, rows in summarize(ds):
        print_rows(title, columns, rows)


@app.command()
def demo(dataset: Path = DatasetArg) -> None:
    """The main job on the embedded defaults: build, validate, summarise."""
    from .pipeline import run_demo

    run_demo(dataset, console)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
