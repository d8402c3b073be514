"""The ``fib`` command: one thin function per verb; the work lives in the feature modules."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .dataset import DEFAULT_DATASET

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="fib-data: GPU-kernel benchmarks for LLM serving as a dataset.")
# Wide enough for result tables when output is piped (rich assumes 80 columns there).
console = Console(width=None if Console().is_terminal else 160)
err = Console(stderr=True)

DatasetArg = typer.Argument(DEFAULT_DATASET, help="Dataset folder.")


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def _open(dataset: Path):
    """The dataset folder, or a one-line error and exit 1 when it is not one."""
    from .dataset import Dataset

    try:
        return Dataset(dataset)
    except FileNotFoundError as exc:
        _fail(str(exc))


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
    from .summary import summarize

    ds = _open(dataset)
    for title, columns, rows in summarize(ds):
        print_rows(title, columns, rows)


@app.command()
def build(dataset: Path = DatasetArg,
          profile: str = typer.Option("full", help="Workload spread: full (serving ranges) or "
                                      "cpu (tiny shapes that run on a CPU).")) -> None:
    """Build the curated dataset (definitions, workloads + blobs, solutions, card) reproducibly."""
    from .curated.build import build_dataset

    try:
        ds = build_dataset(dataset, profile=profile)
    except ValueError as exc:
        _fail(str(exc))
    counts = ", ".join(f"{ds.count(t)} {t}" for t in ("definitions", "workloads", "solutions"))
    console.print(f"built {ds.root} ({profile} profile): {counts}", soft_wrap=True)


@app.command()
def demo(dataset: Path = DatasetArg,
         profile: str = typer.Option("auto", help="Workloads: auto (full on a GPU, cpu otherwise), full, cpu."),
         devices: str = typer.Option("auto", help="cuda:0,cuda:1 | cpu | auto (every GPU, else cpu)."),
         definition: Optional[list[str]] = typer.Option(None, help="Only these definitions (repeatable)."),
         report_dir: Optional[Path] = typer.Option(None, "--report", help="Report folder (default report/ "
                                                   "beside the dataset)."),
         timeout: float = typer.Option(120.0, help="Seconds per evaluation.")) -> None:
    """The main job: build the dataset, validate, benchmark here, print the leaderboard, write the report."""
    from .executor.bench import parse_devices
    from .pipeline import run_demo

    run_demo(dataset, console, profile=profile, devices=parse_devices(devices), definitions=definition,
             report_dir=report_dir, timeout=timeout)


@app.command("import-json")
def import_json(src: Path = typer.Argument(..., help="FlashInfer Trace folder (either generation)."),
                dst: Path = DatasetArg,
                skip_invalid: bool = typer.Option(False, help="Import the rows that resolve; "
                                                  "list the others in a rejects report."),
                rejects: Optional[Path] = typer.Option(None, help="Where to write the rejects "
                                                       "report (default DST/imports/).")) -> None:
    """Import definitions/, workloads/, solutions/, traces/ (+ blob/) into a dataset folder."""
    from .errors import DataError
    from .interop import import_json as run_import

    try:
        result = run_import(src, dst, skip_invalid=skip_invalid, rejects_path=rejects)
    except (DataError, FileExistsError, FileNotFoundError) as exc:
        for problem in getattr(exc, "problems", []):
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        _fail(str(exc).splitlines()[0])
    console.print(f"imported into {dst}: " + ", ".join(f"{v} {k}" for k, v in result.counts.items()))
    if result.rejects_path:
        console.print(f"skipped {len(result.rejects)} row(s); reasons in {result.rejects_path}")


@app.command("import-evaluations")
def import_evaluations(dataset: Path = typer.Argument(..., help="Dataset folder."),
                       files: list[Path] = typer.Argument(..., help="Evaluations part files (run-*.parquet) "
                                                          "from other runs, e.g. benchmarks/results/*/run-*.parquet.")) -> None:
    """Add evaluations measured elsewhere (another machine's runs) to a dataset, one part file each.

    Rows whose solution or workload the dataset does not hold, and keys already stored, are left out."""
    from .errors import DataError
    from .executor.store import import_runs

    try:
        found = import_runs(_open(dataset), files)
    except DataError as exc:
        _fail(str(exc))
    cols = ["file", "rows", "imported", "unknown_solution_or_workload", "already_stored"]
    print_rows(f"import into {dataset}", cols, [tuple(f[c] for c in cols) for f in found])


@app.command("export-json")
def export_json(dataset: Path = typer.Argument(..., help="Dataset folder."),
                out: Path = typer.Argument(..., help="New folder for the FlashInfer Trace JSON.")) -> None:
    """Write a dataset in the FlashInfer Trace JSON layout (loadable by TraceSet.from_path)."""
    from .errors import DataError
    from .interop import export_json as run_export

    try:
        counts = run_export(dataset, out)
    except (DataError, FileExistsError, FileNotFoundError) as exc:
        _fail(str(exc))
    console.print(f"exported to {out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@app.command()
def validate(dataset: Path = DatasetArg) -> None:
    """Check keys, references, axes, shapes, dtypes, code, blobs and paths; exit 1 on any problem."""
    from .validate import validate_dataset

    try:
        problems = validate_dataset(dataset)
    except FileNotFoundError as exc:
        _fail(str(exc))
    for problem in problems:
        err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if problems:
        _fail(f"{len(problems)} problem(s) in {dataset}")
    console.print(f"OK: {dataset} is valid", highlight=False)


@app.command()
def publish(dataset: Path = typer.Argument(..., help="Dataset folder."),
            repo: str = typer.Option(..., help="Hub dataset repo, ORG/NAME."),
            tag: Optional[str] = typer.Option(None, help="Tag the snapshot, e.g. v2026.11.23."),
            message: Optional[str] = typer.Option(None, help="Commit title (default: a summary)."),
            create_pr: bool = typer.Option(False, "--create-pr", help="Open a pull request instead."),
            force: bool = typer.Option(False, "--force", help="Move the tag if it exists.")) -> None:
    """Validate, upload what changed since the Hub's head in one commit, then tag it."""
    from .errors import DataError
    from .hub import HubError, publish as run_publish

    try:
        done = run_publish(dataset, repo, tag=tag, message=message, create_pr=create_pr, force=force)
    except (DataError, HubError, FileNotFoundError) as exc:
        _fail(str(exc))
    what = (f"{done['title']}: {len(done['uploaded'])} file(s), {done['bytes']} bytes"
            if done["committed"] else "nothing changed since the Hub's head; no commit")
    console.print(f"{repo}@{done['commit'][:12]}: {what}", highlight=False)
    if done["pull_request"]:
        console.print(f"opened pull request {done['pull_request']}", highlight=False)
    if done["tag"]:
        console.print(f"tagged {done['tag']}", highlight=False)


@app.command()
def pull(repo: str = typer.Argument(..., help="Hub dataset repo, ORG/NAME."),
         revision: Optional[str] = typer.Option(None, help="Tag, branch or commit (default main)."),
         to: Optional[Path] = typer.Option(None, help="Target folder (default: NAME)."),
         table: Optional[list[str]] = typer.Option(None, help="Only these tables (repeatable)."),
         blobs: bool = typer.Option(False, "--blobs", help="Download all blobs now, not on demand.")) -> None:
    """Download one snapshot and verify its hashes; missing blobs are fetched when read."""
    from .hub import HubError, pull as run_pull

    try:
        folder = run_pull(repo, revision=revision, to=to, tables=table, blobs=blobs)
    except (HubError, ValueError) as exc:
        _fail(str(exc))
    console.print(f"pulled {repo}@{revision or 'main'} into {folder}", highlight=False)


@app.command()
def snapshots(repo: str = typer.Argument(..., help="Hub dataset repo, ORG/NAME.")) -> None:
    """Tagged snapshots with their commit, date and row counts per table."""
    from .hub import HubError, snapshots as list_snapshots
    from .schema import TABLES

    try:
        snaps = list_snapshots(repo)
    except HubError as exc:
        _fail(str(exc))
    print_rows(f"snapshots of {repo}", ["tag", "commit", "date", *TABLES],
               [(s["tag"], s["commit"][:12], s["snapshot_date"] or s["date"],
                 *(s["rows"].get(t) for t in TABLES)) for s in snaps])


def _emit(frame, title: str, fmt: str, out: Optional[Path]) -> None:
    from .query import write_frame

    if fmt == "table":
        print_rows(title, frame.columns, frame.rows())
        return
    try:
        text = write_frame(frame, fmt, out)
    except ValueError as exc:
        _fail(str(exc))
    if text is not None:
        print(text, end="" if text.endswith("\n") else "\n")


FormatOpt = typer.Option("table", "--format", help="table, csv, json or parquet (parquet needs --out).")
OutOpt = typer.Option(None, "--out", help="Write the result to this file.")


@app.command()
def query(name: Optional[str] = typer.Argument(None, help="Query name (queries/NAME.sql); omit to list."),
          dataset: Path = DatasetArg,
          param: list[str] = typer.Option([], "--param", help="NAME=VALUE, repeatable; lists as a,b,c."),
          fmt: str = FormatOpt, out: Optional[Path] = OutOpt) -> None:
    """Run a named SQL query from queries/ over the dataset."""
    import duckdb

    from .query import list_queries, run_query

    if name is None:
        for q in list_queries():
            console.print(f"[bold]{q.name}[/bold]  {q.summary}", highlight=False)
            for p in q.params:
                console.print(f"    --param {p.name}=...  {p.doc} (default {p.default})", highlight=False)
        return
    pairs = [p.partition("=") for p in param]
    if any(not sep for _, sep, _ in pairs):
        _fail("--param takes NAME=VALUE")
    try:
        frame = run_query(dataset, name, {k: v for k, _, v in pairs})
    except (ValueError, FileNotFoundError, duckdb.Error) as exc:
        _fail(str(exc))
    _emit(frame, name, fmt, out)


@app.command()
def sql(statement: str = typer.Argument(..., help="SQL over definitions, workloads, solutions, evaluations."),
        dataset: Path = DatasetArg, fmt: str = FormatOpt, out: Optional[Path] = OutOpt) -> None:
    """Run ad-hoc SQL (DuckDB) over the four tables and the macros of queries/_macros.sql."""
    import duckdb

    from .query import run_sql

    try:
        frame = run_sql(dataset, statement)
    except (duckdb.Error, FileNotFoundError) as exc:
        _fail(str(exc))
    _emit(frame, "sql", fmt, out)


@app.command()
def diff(old: str = typer.Argument(..., help="Older dataset folder, or ORG/NAME@revision on the Hub."),
         new: str = typer.Argument(..., help="Newer dataset folder, or ORG/NAME@revision on the Hub."),
         fmt: str = FormatOpt, out: Optional[Path] = OutOpt) -> None:
    """Rows added or removed per table, and latency regressions, between two snapshots."""
    import tempfile

    from .hub import HubError, materialize
    from .query import diff_datasets

    try:
        with tempfile.TemporaryDirectory(prefix="fib-diff-") as tmp:
            frame = diff_datasets(materialize(old, tmp), materialize(new, tmp))
    except (FileNotFoundError, HubError) as exc:
        _fail(str(exc))
    if fmt != "table":
        _emit(frame, "changes", fmt, out)
        return
    if frame.height == 0:
        console.print(f"no changes from {old} to {new}")
        return
    counts = frame.group_by("change", "table_name").len().sort("change", "table_name")
    print_rows(f"{old} -> {new}", counts.columns, counts.rows())
    shown = frame.filter(frame["change"].is_in(["regression", "broken"])).select(
        "change", "solution", "workload_uuid", "hardware", "old_latency_ms", "new_latency_ms", "spread_ms")
    if shown.height:
        print_rows("regressions (all rows: --format csv)", shown.columns, shown.head(200).rows())


@app.command()
def report(dataset: Path = DatasetArg,
           out: Path = typer.Option(Path("report"), "--out", help="Folder for the static site.")) -> None:
    """Write a static HTML leaderboard site (works offline) from the queries in queries/."""
    from .report import build_report

    ds = _open(dataset)
    index = build_report(ds, out)
    console.print(f"wrote {index}")


@app.command()
def bench(dataset: Path = DatasetArg,
          definition: Optional[list[str]] = typer.Option(None, help="Definition name (repeatable)."),
          solution: Optional[list[str]] = typer.Option(None, help="Solution name (repeatable)."),
          workload: Optional[list[str]] = typer.Option(None, help="Workload uuid (repeatable)."),
          devices: str = typer.Option("auto", help="cuda:0,cuda:1 | cpu | cpu,cpu | auto."),
          timeout: float = typer.Option(300.0, help="Seconds per evaluation (builds get --build-timeout more)."),
          build_timeout: float = typer.Option(600.0, help="Extra seconds for a solution's first build."),
          backend: str = typer.Option("local", help="local | ray."),
          address: Optional[str] = typer.Option(None, help="Ray cluster address (backend ray)."),
          cuda_graph: bool = typer.Option(False, "--cuda-graph", help="Time by CUDA-graph replay."),
          trials: int = typer.Option(3, help="Correctness trials with fresh inputs."),
          reps: Optional[int] = typer.Option(None, help="Most timed calls (default 50 GPU, 10 CPU)."),
          min_reps: int = typer.Option(10, help="Fewest timed calls before the CI rule may stop."),
          ci_width: float = typer.Option(0.02, help="Stop timing once the median's 95%% CI is this narrow "
                                                     "(relative); 0 times exactly --reps calls."),
          warmup_ms: Optional[float] = typer.Option(None, help="Warm-up budget per timed function, at least 3 calls (default 1, after the correctness trials)."),
          hold: bool = typer.Option(True, "--hold/--no-hold",
                                    help="Hold the GPU before each timed call until the host has enqueued "
                                         "it, so host launch latency is not timed (--no-hold times it, "
                                         "as the peer does)."),
          prebuild: Optional[int] = typer.Option(None, help="Parallel build processes before timing "
                                                             "(default: up to 8 on GPU; 0: off)."),
          seed: int = typer.Option(0, help="Base seed for inputs."),
          stop_after: Optional[float] = typer.Option(None, help="Seconds; pre-builds end and no evaluation "
                                                     "starts after this (rerun the command to resume)."),
          all_hardware: bool = typer.Option(False, "--all-hardware",
                                            help="Also run solutions whose target_hardware excludes "
                                                 "these devices.")) -> None:
    """Evaluate solutions on workloads; writes data/evaluations/run-<id>.parquet (resumable)."""
    from .executor.bench import BenchOptions, parse_devices
    from .executor.progress import run_with_progress

    _open(dataset)
    options = BenchOptions(trials=trials, reps=reps, warmup_ms=warmup_ms, cuda_graph=cuda_graph, seed=seed,
                           timeout=timeout, build_timeout=build_timeout, hold=hold, prebuild=prebuild,
                           min_reps=min_reps, ci_width=ci_width)
    from .executor.worker import WorkerFault

    try:
        run_with_progress(console, root=dataset, definitions=definition, solutions=solution, workloads=workload,
                          devices=["cuda"] if backend == "ray" and devices == "auto" else parse_devices(devices),
                          backend=backend, address=address, options=options, all_hardware=all_hardware,
                          deadline=time.monotonic() + stop_after if stop_after else None)
    except WorkerFault as exc:
        _fail(f"a device worker could not start: {exc}")


@app.command()
def ingest(sources: list[Path] = typer.Argument(..., help="Log files, dump/trace folders, request traces."),
           model: str = typer.Option(..., help="Shipped model name (llama-3.1-8b, ...) or a config.json path."),
           into: Path = typer.Option(..., "--into", help="Dataset folder to add workloads to."),
           tp: int = typer.Option(1, help="Tensor-parallel degree of the serving run."),
           page_size: int = typer.Option(1, help="KV-cache page size (tokens per page)."),
           fmt: str = typer.Option("auto", "--format", help="auto | sglang | vllm | flashinfer_log | "
                                   "flashinfer_dump | fib_trace | sharegpt | burstgpt | azure | mooncake."),
           bucketing: str = typer.Option("pow2", help="exact | pow2 | page (recorded in provenance)."),
           strict: bool = typer.Option(False, "--strict", help="Fail (adding nothing) if any input is skipped."),
           decode_log_interval: int = typer.Option(40, help="SGLang --decode-log-interval of the run."),
           rank: Optional[str] = typer.Option(None, help="SGLang rank tag to keep (default: first per DP group)."),
           kv_capacity: Optional[int] = typer.Option(None, help="vLLM KV capacity in tokens (else startup line)."),
           max_running_requests: int = typer.Option(256, help="Simulator: max running requests."),
           chunked_prefill_size: int = typer.Option(8192, help="Simulator: prefill token budget per step."),
           chars_per_token: float = typer.Option(4.0, help="ShareGPT token estimate without a tokenizer."),
           tokenizer: Optional[Path] = typer.Option(None, help="tokenizer.json for ShareGPT token counts.")) -> None:
    """Turn serving logs / request traces into weighted workloads (atomic; prints a summary)."""
    from .ingest import IngestError, IngestOptions
    from .ingest import ingest as run_ingest
    from .ingest.simulator import SimulatorOptions

    options = IngestOptions(model=model, tp=tp, page_size=page_size, fmt=fmt, bucketing=bucketing,
                            strict=strict, decode_log_interval=decode_log_interval, rank=rank,
                            kv_capacity=kv_capacity, chars_per_token=chars_per_token,
                            tokenizer=str(tokenizer) if tokenizer else None,
                            simulator=SimulatorOptions(max_running_requests, chunked_prefill_size))
    try:
        report = run_ingest(sources, options, into)
    except (IngestError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    console.print(report.render(), highlight=False, markup=False)


@app.command()
def dispatch(dataset: Path = DatasetArg,
             hardware: str = typer.Option("auto", help="Hardware name as stored, or auto (this machine)."),
             engine: str = typer.Option("auto", help="auto, sql (DuckDB) or arrow (pyarrow only).")) -> None:
    """The dispatch table apply() would use: per definition and shape, correct solutions, fastest first."""
    from .apply import build_table, detect_hardware
    from .apply.report import table_text

    ds = _open(dataset)
    typer.echo(table_text(build_table(ds, detect_hardware(ds) if hardware == "auto" else hardware,
                                      engine=engine)))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
