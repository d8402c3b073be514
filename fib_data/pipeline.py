"""The README's main job: build the dataset, check it, benchmark it here, rank, and report."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rich.console import Console

#: Columns of the leaderboard printed at the end (the full table is in the report).
_BOARD_COLUMNS = ("definition", "rank", "solution", "language", "geomean_speedup", "coverage", "flagged")


def local_devices() -> list[str]:
    from .executor.bench import parse_devices

    return parse_devices("auto")


def run_demo(root: Path, console: Console, *, profile: str = "auto", devices: Sequence[str] | None = None,
             definitions: Sequence[str] | None = None, report_dir: Path | None = None,
             timeout: float = 120.0, trials: int = 2, reps: int | None = None) -> dict:
    from .curated.build import build_dataset
    from .executor.bench import BenchOptions
    from .executor.progress import run_with_progress
    from .validate import validate_dataset

    devices = list(devices or local_devices())
    gpu = any(d.startswith("cuda") for d in devices)
    profile = ("full" if gpu else "cpu") if profile == "auto" else profile
    ds = build_dataset(root, profile=profile)
    console.print(f"built {ds.root} ({profile} profile) on {', '.join(devices)}")
    problems = validate_dataset(ds)
    if problems:
        for p in problems[:20]:
            console.print(f"  {p}", highlight=False)
        raise SystemExit(f"{len(problems)} validation problem(s); not benchmarking an invalid dataset")
    console.print("validate: OK")
    options = BenchOptions(trials=trials, reps=reps, timeout=timeout)
    result = run_with_progress(console, root=ds.root, definitions=definitions, devices=devices,
                               options=options)
    board = print_leaderboard(ds, console)
    report = _report(ds, report_dir or ds.root.parent / "report", console)
    return {"dataset": ds.root, "run": result, "leaderboard": board, "report": report}


def print_leaderboard(ds, console: Console):
    from .cli import print_rows
    from .query import run_query

    board = run_query(ds, "leaderboard")
    cols = [c for c in _BOARD_COLUMNS if c in board.columns]
    for hardware in board["hardware"].unique(maintain_order=True).to_list():
        rows = board.filter(board["hardware"] == hardware).select(cols).rows()
        print_rows(f"leaderboard on {hardware} (geometric-mean speedup over the reference)", cols, rows)
    return board


def _report(ds, out: Path, console: Console) -> Path:
    from .report import build_report

    index = build_report(ds, out)
    console.print(f"report: {index}")
    return index
