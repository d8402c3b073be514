"""``fib import-json``: a FlashInfer Trace folder (either generation) -> a dataset folder.

Every source row (a .json file, or one line of a .jsonl file) is parsed, then resolved against the
rows that parsed: solutions and workloads need their definition, traces need their definition,
solution (by exact name; nothing is fuzzy-matched) and workload (by uuid, or, for 2025-07 traces
that carry none, by definition + axes). By default any problem refuses the whole source; with
``skip_invalid`` the rows that resolve are imported and the others are listed in a rejects report.
Either way the dataset gets all tables or nothing: parts are written into a staging folder and
renamed into place at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from .. import atomic
from ..blobs import BlobStore
from ..dataset import Dataset, new_part_name, write_parquet
from ..errors import DataError, Problem, _short
from ..rows import to_arrow
from ..schema import TABLES, schema_of
from .blob_inputs import SourceBlobs
from .read_upstream import (Where, definition_row, evaluation_fields, is_workload_only,
                            solution_row, trace_header, workload_fields)


@dataclass
class ImportResult:
    counts: dict[str, int]
    rejects: list[str] = field(default_factory=list)
    rejects_path: Path | None = None


@dataclass
class _Rejects:
    """Problems of each rejected source row, kept in the order the rows were read."""

    rows: dict[tuple[str, str, int | None], list[Problem]] = field(default_factory=dict)

    def add(self, table: str, at: Where, problems: list[Problem]) -> None:
        self.rows.setdefault((table, at.file, at.line), []).extend(problems)

    def problems(self) -> list[Problem]:
        return [p for ps in self.rows.values() for p in ps]

    def lines(self) -> list[str]:
        out = []
        for (table, file, line), ps in self.rows.items():
            line = ps[0].row if line is None else line  # a .json file: the first bad field's line
            where = file + (f":{line}" if line is not None else "")
            reasons = [f"{p.field}: {p.message}"
                       + (f" ({_short(p.value)})" if p.value is not None else "") for p in ps]
            out.append(f"{where}: skipped {table[:-1]} row: " + "; ".join(reasons))
        return out


def source_files(src: Path) -> dict[str, list[Path]]:
    traces = src / "traces"
    old_workloads = traces / "workloads"  # 2025-07 kept workloads under traces/
    return {
        "definitions": sorted((src / "definitions").rglob("*.json")),
        "solutions": sorted((src / "solutions").rglob("*.json")),
        "workloads": (sorted((src / "workloads").rglob("*.jsonl"))
                      + sorted(old_workloads.rglob("*.jsonl"))),
        "traces": sorted(p for p in traces.rglob("*.jsonl") if old_workloads not in p.parents),
    }


class _Importer:
    def __init__(self, src: Path, existing: Dataset | None, staging: Path):
        self.src = src
        self.staging = staging
        self.rejects = _Rejects()
        self.blobs = SourceBlobs(src)
        self.definitions: dict[str, dict] = {}
        self.solutions: dict[str, dict] = {}
        self.workloads: dict[str, dict] = {}
        self.rejected: dict[str, set[str]] = {t: set() for t in TABLES}
        self.by_axes: dict[tuple, list[str]] = {}
        self.eval_keys: dict[tuple, str] = {}
        self.counts = dict.fromkeys(TABLES, 0)
        self.existing = existing
        if existing is not None:
            self._load_existing(existing)

    def _load_existing(self, ds: Dataset) -> None:
        # Rows already in the destination can be referenced, and their keys cannot be reused.
        for row in ds.read("definitions").to_pylist():
            self.definitions[row["name"]] = row | {"_existing": True}
        for row in ds.read("solutions").to_pylist():
            self.solutions[row["name"]] = row | {"_existing": True}
        for row in ds.read("workloads").to_pylist():
            self.workloads[row["uuid"]] = row | {"_existing": True}
            self._index_axes(row)
        for key in ds.keys("evaluations"):
            self.eval_keys[key] = "the destination dataset"

    def rel(self, path: Path) -> str:
        return path.relative_to(self.src).as_posix()

    # ---- one .json file per row ----------------------------------------------------------
    def _json_rows(self, table: str, files: list[Path]) -> Iterator[tuple[dict, Where]]:
        for path in files:
            text = path.read_text(encoding="utf-8")
            at = Where(table, self.rel(path), None, text)
            try:
                obj = json.loads(text)
            except ValueError as exc:
                at.add("*", f"not valid JSON: {exc}")
                self.rejects.add(table, at, at.problems)
                continue
            if not isinstance(obj, dict):
                at.add("*", "not a JSON object", type(obj).__name__)
                self.rejects.add(table, at, at.problems)
                continue
            yield obj, at

    def _keep(self, table: str, at: Where, key: str | None) -> bool:
        if at.problems:
            self.rejects.add(table, at, at.problems)
            if key:
                self.rejected[table].add(key)
            return False
        return True

    def read_definitions(self, files: list[Path]) -> None:
        for obj, at in self._json_rows("definitions", files):
            row = definition_row(obj, at)
            name = row["name"]
            _check_new(self.definitions, name, at, "name")
            if self._keep("definitions", at, name):
                self.definitions[name] = row | {"_at": at.file}

    def read_solutions(self, files: list[Path]) -> None:
        for obj, at in self._json_rows("solutions", files):
            row = solution_row(obj, at)
            name = row["name"]
            self._check_definition(row["definition"], at)
            _check_new(self.solutions, name, at, "name")
            if self._keep("solutions", at, name):
                self.solutions[name] = row | {"_at": at.file}

    def _check_definition(self, name: str | None, at: Where) -> None:
        if name is None:
            return
        if name not in self.definitions:
            rejected = name in self.rejected["definitions"]
            at.add("definition",
                   "its definition was rejected" if rejected else "no such definition", name)

    # ---- .jsonl files: one row per line --------------------------------------------------
    def _lines(self, table: str, path: Path) -> Iterator[tuple[Any, Where]]:
        rel = self.rel(path)
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                at = Where(table, rel, n)
                try:
                    yield json.loads(line), at
                except ValueError as exc:
                    at.add("*", f"not valid JSON: {exc}")
                    self.rejects.add(table, at, at.problems)

    def read_workloads(self, files: list[Path]) -> list[dict]:
        rows = []
        for path in files:
            for obj, at in self._lines("workloads", path):
                head = trace_header(obj, at)
                if head is None:
                    self.rejects.add("workloads", at, at.problems)
                    continue
                if not is_workload_only(obj):
                    at.add("solution", "a workloads file line carries a solution or evaluation",
                           obj.get("solution"))
                row = self._workload(head["definition"], obj.get("workload"), at, need_uuid=True)
                if row is not None:
                    rows.append(row)
        return rows

    def _workload(self, definition: str | None, obj: Any, at: Where,
                  need_uuid: bool) -> dict | None:
        fields = workload_fields(obj, at, need_uuid)
        self._check_definition(definition, at)
        self._resolve_blobs(fields["inputs"], at)
        uid = fields["uuid"]
        _check_new(self.workloads, uid, at, "workload.uuid")
        if not self._keep("workloads", at, uid):
            return None
        row = {"uuid": uid, "definition": definition, **fields, "weight": 1,
               "source_kind": "import", "source_file": at.file, "model": None, "engine": None,
               "observed_at": None, "measured_axes": None, "bucketing": None, "notes": None}
        self.workloads[uid] = row | {"_at": f"{at.file}:{at.line}"}
        self._index_axes(row)
        return row

    def _index_axes(self, row: dict) -> None:
        key = (row["definition"], tuple((a["name"], a["value"]) for a in row["axes"]))
        self.by_axes.setdefault(key, []).append(row["uuid"])

    def _resolve_blobs(self, inputs: list[dict], at: Where) -> None:
        for inp in inputs:
            path = inp.pop("path")
            if inp["type"] != "safetensors" or path is None or inp["tensor_key"] is None:
                continue
            sha, why = self.blobs.resolve(path, inp["tensor_key"])
            if why:
                at.add(f"workload.inputs.{inp['name']}.path", why, path)
            inp["sha256"] = sha

    # ---- traces -> evaluations -----------------------------------------------------------
    def read_traces(self, path: Path) -> list[dict]:
        run_id = "import-" + _file_sha(path)[:16]
        rows, new_workloads = [], []
        for obj, at in self._lines("evaluations", path):
            head = trace_header(obj, at)
            if head is None:
                self.rejects.add("evaluations", at, at.problems)
                continue
            row = self._trace(obj, head["definition"], at, run_id, new_workloads)
            if row is not None:
                rows.append(row)
        if new_workloads:
            self.write("workloads", new_workloads, new_part_name("import"))
        return rows

    def _trace(self, obj: dict, definition: str | None, at: Where, run_id: str,
               new_workloads: list[dict]) -> dict | None:
        if is_workload_only(obj):
            at.add("solution", "a traces file line without solution and evaluation; workload "
                   "lines belong in workloads/", obj.get("solution"))
            self.rejects.add("evaluations", at, at.problems)
            return None
        ev = evaluation_fields(obj, at)
        self._check_definition(definition, at)
        solution = self._solution_of(obj.get("solution"), definition, at)
        wl = self._workload_of(definition, obj.get("workload"), at, new_workloads)
        if solution is not None and wl is not None and ev["environment_hash"]:
            key = (solution["content_hash"], wl, ev["environment_hash"])
            if key in self.eval_keys:
                at.add("evaluation", "same solution content, workload and environment as "
                       f"{self.eval_keys[key]} (duplicate evaluation key)")
            elif not at.problems:
                self.eval_keys[key] = f"{at.file}:{at.line}"
        if not self._keep("evaluations", at, None):
            return None
        return {"run_id": run_id, "definition": definition, "workload_uuid": wl,
                "solution": solution["name"], "solution_hash": solution["content_hash"], **ev}

    def _solution_of(self, name: Any, definition: str | None, at: Where) -> dict | None:
        if not isinstance(name, str) or not name:
            at.add("solution", "must be a solution name", name)
            return None
        sol = self.solutions.get(name)
        if sol is None:
            rejected = name in self.rejected["solutions"]
            at.add("solution", "its solution was rejected" if rejected
                   else "no solution with this exact name", name)
        elif definition and sol["definition"] != definition:
            at.add("solution", f"solution implements {sol['definition']}, not {definition}", name)
        return sol

    def _workload_of(self, definition: str | None, obj: Any, at: Where,
                     new_workloads: list[dict]) -> str | None:
        probe = Where("evaluations", at.file, at.line)
        fields = workload_fields(obj, probe, need_uuid=False)
        if probe.problems:
            at.problems.extend(probe.problems)
            return None
        uid = fields["uuid"]
        if uid is None:  # 2025-07: match by definition and axes
            axes = tuple((a["name"], a["value"]) for a in fields["axes"])
            found = self.by_axes.get((definition, axes), [])
            if len(found) != 1:
                why = "no workload" if not found else f"{len(found)} workloads"
                at.add("workload.axes", f"{why} of {definition} with these axes", dict(axes))
                return None
            return found[0]
        stored = self.workloads.get(uid)
        if stored is None and uid in self.rejected["workloads"]:
            at.add("workload.uuid", "its workload was rejected", uid)
            return None
        if stored is None:  # a trace may be the only place its workload is written down
            row = self._workload(definition, obj, Where("workloads", at.file, at.line), True)
            if row is None:
                at.add("workload", "its inline workload is invalid (see the workloads reject)", uid)
                return None
            new_workloads.append(row)
            return uid
        self._resolve_blobs(fields["inputs"], probe)
        if (stored["definition"], stored["axes"], stored["inputs"]) != (
                definition, fields["axes"], fields["inputs"]):
            at.add("workload", f"differs from the stored workload ({_seen_at(stored)})", uid)
        return uid

    # ---- staging -------------------------------------------------------------------------
    def write(self, table: str, rows: list[dict], name: str) -> None:
        if not rows:
            return
        clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        arrow = _arrow(table, clean, name)
        write_parquet(self.staging / "data" / table / name, arrow)
        self.counts[table] += arrow.num_rows

    def stage_blobs(self) -> None:
        store = BlobStore(self.staging / "blobs")
        for path in self.blobs.by_sha.values():
            store.put_bytes(path.read_bytes())


def _arrow(table: str, rows: list[dict], where: str) -> pa.Table:
    try:
        arrow = pa.Table.from_pylist(rows, schema=schema_of(table))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return to_arrow(table, rows, where)  # slow path that names the row and field
    return to_arrow(table, arrow, where)


def _seen_at(row: dict) -> str:
    return row.get("_at", "the destination dataset")


def _check_new(rows: dict[str, dict], key: str | None, at: Where, fld: str) -> None:
    if key in rows:
        at.add(fld, f"duplicate key (also {_seen_at(rows[key])})", key)


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fresh(rows: dict[str, dict]) -> list[dict]:
    return [r for r in rows.values() if not r.get("_existing")]


def import_json(src: str | os.PathLike, dst: str | os.PathLike, skip_invalid: bool = False,
                rejects_path: str | os.PathLike | None = None) -> ImportResult:
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is not a folder")
    files = source_files(src)
    if not any(files.values()):
        raise DataError([Problem("definitions", str(src), None, "*",
                                 "no definitions/, solutions/, workloads/ or traces/ files")])
    existing = Dataset(dst) if (dst / "data").is_dir() else None
    if existing is None and dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"{dst} exists and is not a dataset folder")
    staging = (dst if existing else dst.parent) / f".import-{uuidlib.uuid4().hex[:8]}"
    Dataset.create(staging, card=False)
    try:
        imp = _Importer(src, existing, staging)
        _read_all(imp, files)
        problems = imp.rejects.problems()
        if problems and not skip_invalid:
            raise DataError(problems, f"{src}: refused (nothing imported; --skip-invalid imports "
                                      f"the rows that resolve)")
        imp.stage_blobs()
        result = ImportResult(imp.counts, imp.rejects.lines())
        _commit(staging, dst, existing)
        if result.rejects:
            result.rejects_path = _rejects_file(rejects_path, dst)
            atomic.write_text(result.rejects_path, "\n".join(result.rejects) + "\n")
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _read_all(imp: _Importer, files: dict[str, list[Path]]) -> None:
    imp.read_definitions(files["definitions"])
    imp.read_solutions(files["solutions"])
    workloads = imp.read_workloads(files["workloads"])
    imp.write("definitions", _fresh(imp.definitions), new_part_name("import"))
    imp.write("solutions", _fresh(imp.solutions), new_part_name("import"))
    imp.write("workloads", workloads, new_part_name("import"))
    for path in files["traces"]:
        rows = imp.read_traces(path)
        name = f"run-{rows[0]['run_id']}.parquet" if rows else ""
        if rows and imp.existing and (imp.existing.table_dir("evaluations") / name).exists():
            raise FileExistsError(f"{imp.rel(path)} was imported before ({name} exists)")
        imp.write("evaluations", rows, name)


def _rejects_file(explicit, dst: Path) -> Path:
    if explicit:
        return Path(explicit)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return dst / "imports" / f"rejects-{stamp}.txt"


def _commit(staging: Path, dst: Path, existing: Dataset | None) -> None:
    if existing is None:
        Dataset(staging).write_card()
        os.replace(staging, dst)  # the whole dataset appears at once
    else:
        _move_parts(staging, existing)
        existing.write_card()


def _move_parts(staging: Path, ds: Dataset) -> None:
    """Rename staged parts into place; undo the renames done so far if one fails."""
    moved: list[tuple[Path, Path]] = []
    try:
        for part in sorted((staging / "data").glob("*/*.parquet")):
            if part.name.startswith("part-00000000-empty"):
                continue
            target = ds.table_dir(part.parent.name) / part.name
            if target.exists():
                raise FileExistsError(f"{target} exists")
            os.replace(part, target)
            moved.append((part, target))
        for blob in (staging / "blobs").glob("*/*.safetensors"):
            target = ds.blobs.path_for(blob.stem)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(blob, target)
    except BaseException:
        for part, target in reversed(moved):
            os.replace(target, part)
        raise
