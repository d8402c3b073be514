"""Progress bar and end-of-run summary for ``fib bench`` (rich)."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def run_with_progress(console: Console, **kwargs: Any) -> dict:
    from .bench import run_bench

    progress = Progress(TextColumn("[bold]bench"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("{task.description}"), console=console,
                        transient=False)
    task = progress.add_task("starting workers", total=None)

    def on_start(selected: int, todo: int) -> None:
        progress.update(task, total=todo, description=f"{selected - todo} already stored")

    def on_row(row: dict) -> None:
        progress.update(task, advance=1, description=f"{row['solution']}: {row['status']}")

    def on_prebuilt(name: str, seconds: float, error: str | None) -> None:
        progress.update(task, description=f"pre-built {name} ({seconds:.0f} s{', failed' if error else ''})")

    with progress:
        result = run_bench(on_start=on_start, on_row=on_row, on_prebuilt=on_prebuilt, **kwargs)
    console.print(summary_table(result["rows"]))
    console.print(f"run {result['run_id']}: {len(result['rows'])} evaluations, "
                  f"{result['skipped_done']} already stored; part file {result['part_file']}")
    if result.get("not_started"):
        console.print(f"{result['not_started']} evaluations not started before the deadline; "
                      "rerun the same command to resume")
    return result


def summary_table(rows: list[dict]) -> Table:
    """Per solution: status counts, geometric-mean speedup over passed workloads, flags."""
    table = Table(title="fib bench")
    for col in ("definition", "solution", "evals", "passed", "other statuses", "geomean speedup",
                "median latency ms", "flags"):
        table.add_column(col)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["definition"], row["solution"]), []).append(row)
    for (definition, solution), items in sorted(groups.items()):
        passed = [r for r in items if r["status"] == "PASSED"]
        others: dict[str, int] = {}
        for r in items:
            if r["status"] != "PASSED":
                others[r["status"]] = others.get(r["status"], 0) + 1
        speedups = [r["speedup_factor"] for r in passed if r["speedup_factor"]]
        geo = math.exp(sum(map(math.log, speedups)) / len(speedups)) if speedups else None
        lat = sorted(r["latency_ms"] for r in passed if r["latency_ms"] is not None)
        flags = sorted({f for r in items for f in r["flags"]})
        table.add_row(definition, solution, str(len(items)), str(len(passed)),
                      ", ".join(f"{k} {v}" for k, v in sorted(others.items())),
                      f"{geo:.3g}x" if geo else "", f"{lat[len(lat) // 2]:.4g}" if lat else "",
                      ", ".join(flags))
    return table
