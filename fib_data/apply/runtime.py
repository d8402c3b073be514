"""``fib_data.apply()``: patch flashinfer's entry points so each call runs the fastest correct
solution recorded for its definition, shape and hardware, and the original otherwise.

    handle = fib_data.apply("flashinfer-bench")      # or: with fib_data.apply(...) as handle:
    ...serve...
    handle.explain(); handle.undo()

Safety: the original runs when no definition matches the call, when the dataset has no correct
solution at the nearest evaluated shape, when a solution fails to build (it is then skipped for
every shape) or when it raises (it is then skipped for that shape and the next fastest correct
solution, or the original, takes over).
"""

from __future__ import annotations

import os
import time
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..dataset import DEFAULT_DATASET, Dataset
from . import report
from .adapters import default_adapters
from .adapters.base import Adapter
from .matching import DefinitionSpec
from .patch import Patcher, resolve, root_module
from .routes import Choice, Site
from .table import Candidate, DispatchTable, build_table


@dataclass
class LogEntry:
    time: float
    entry: str
    definition: str | None
    call_axes: dict | None
    solution: str | None
    action: str          # substitute | fallback | raised | build_failed
    reason: str
    choice: Choice | None = None

    @property
    def calls(self) -> int:
        return self.choice.calls if self.choice else 0


class ApplyRuntime:
    """The handle ``apply()`` returns: patches installed, table, log. ``undo()`` restores."""

    def __init__(self, ds: Dataset, table: DispatchTable, hardware: str | None,
                 module: str | types.ModuleType = "flashinfer",
                 adapters: Iterable[Adapter] | None = None,
                 builder: Callable[[dict, Any], Callable] | None = None):
        self.dataset = ds
        self.table = table
        self.hardware = hardware
        # Hardware names as the executor writes them: the GPU's name, or "cpu: <model name>".
        self.device_kind = None if hardware is None else (
            "cpu" if hardware.lower().startswith("cpu") else "cuda")
        self.specs = [DefinitionSpec.from_row(r) for r in ds.read("definitions").to_pylist()]
        self._solutions = {(r["name"], r["content_hash"]): r
                           for r in ds.read("solutions").to_pylist()}
        self._builder = builder
        self._built: dict[tuple[str, str], Callable] = {}
        self._broken: dict[str, str] = {}                       # hash -> why (every shape)
        self._raised: dict[tuple[str, str, tuple], str] = {}    # (hash, def, bucket) -> why
        self.log: list[LogEntry] = []
        self.busy = [0]
        self.sites: list[Site] = []
        self.skipped_targets: list[str] = []
        self._patcher = Patcher()
        import torch

        self.empty = torch.empty
        self._install(root_module(module), adapters if adapters is not None else default_adapters())

    # ---- patching ------------------------------------------------------------------------
    def _install(self, root: types.ModuleType, adapters: Iterable[Adapter]) -> None:
        plan = []
        for adapter in adapters:
            for role, paths in adapter.targets.items():
                for path in paths:
                    found = resolve(root, path)
                    if found is None:
                        self.skipped_targets.append(path)
                        continue
                    owner, attr, original = found
                    if getattr(vars(owner).get(attr, original), "__fib_apply__", None):
                        # Stacked patches undone out of order would leave a dead wrapper behind.
                        raise RuntimeError(f"apply() is already active on {root.__name__}.{path}; "
                                           f"undo that handle first")
                    plan.append((adapter, role, owner, attr, original))
        sites: dict[int, Site] = {}
        wrapped: dict[tuple[int, int], Any] = {}
        for adapter, role, owner, attr, original in plan:
            site = sites.get(id(adapter))
            if site is None:
                site = sites[id(adapter)] = adapter.site(self)
                self.sites.append(site)
            raw = vars(owner).get(attr, original)
            # Aliases of one function (flashinfer.rmsnorm, flashinfer.norm.rmsnorm) share one
            # wrapper, so a call counts once whichever name it came through.
            key = (id(adapter), id(raw))
            if key not in wrapped:
                wrapped[key] = adapter.wrap(role, original, site)
            self._patcher.patch(owner, attr, wrapped[key])

    def undo(self) -> None:
        """Put back every original object (identity), newest patch first. Safe to call twice."""
        self._patcher.undo()

    @property
    def active(self) -> bool:
        return len(self._patcher) > 0

    def __enter__(self) -> "ApplyRuntime":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.undo()

    # ---- services for the sites ----------------------------------------------------------
    def device_ok(self, device: Any) -> bool:
        return self.device_kind is None or getattr(device, "type", None) == self.device_kind

    def torch_dtype(self, name: str):
        from ..executor.inputs import torch_dtype

        return torch_dtype(name)

    def blocked(self, solution_hash: str, definition: str, bucket: tuple) -> str | None:
        return self._broken.get(solution_hash) or self._raised.get((solution_hash, definition, bucket))

    def build(self, cand: Candidate, device: Any, entry: str = "") -> tuple[Callable | None, dict | None]:
        row = self._solutions.get((cand.solution, cand.solution_hash))
        key = (cand.solution_hash, str(device))
        if key in self._built:
            return self._built[key], row
        try:
            fn = self._build_fn()(row, device)
        except Exception as exc:  # noqa: BLE001 - a broken solution must never break serving
            why = f"build failed: {type(exc).__name__}: {exc}"
            self._broken[cand.solution_hash] = why
            self._event(entry, row["definition"] if row else None, cand.solution, "build_failed", why)
            return None, None
        self._built[key] = fn
        return fn, row

    def _build_fn(self) -> Callable:
        if self._builder is None:
            from ..executor.build import build_solution

            self._builder = build_solution
        return self._builder

    def solution_raised(self, site: Site, choice: Choice, exc: BaseException) -> None:
        why = f"raised {type(exc).__name__}: {exc}"
        self._raised[(choice.solution_hash, choice.definition, choice.bucket)] = why
        self._event(site.entry, choice.definition, choice.solution, "raised", why)
        site.forget(choice)

    def record(self, choice: Choice, call_axes: dict | None) -> None:
        action = "substitute" if choice.solution else "fallback"
        self.log.append(LogEntry(time.time(), choice.entry, choice.definition, call_axes,
                                 choice.solution, action, choice.reason, choice))
        if os.environ.get("FIB_APPLY_VERBOSE"):
            print(f"[fib apply] {choice.entry}: {action} {choice.solution or ''} ({choice.reason})")

    def _event(self, entry, definition, solution, action, reason) -> None:
        self.log.append(LogEntry(time.time(), entry or "", definition, None, solution, action, reason))

    # ---- reading it back -----------------------------------------------------------------
    def log_rows(self) -> list[dict]:
        return [{"entry": e.entry, "definition": e.definition, "call_axes": e.call_axes,
                 "solution": e.solution, "action": e.action, "reason": e.reason, "calls": e.calls}
                for e in self.log]

    def explain(self, file=None) -> str:
        """Print (and return) the dispatch table, the patched entry points and the log."""
        text = report.explain(self)
        print(text, file=file)
        return text


def apply(dataset: str | os.PathLike | Dataset = DEFAULT_DATASET, hardware: str | None = "auto",
          policy: str = "fastest-correct", *, module: str | types.ModuleType = "flashinfer",
          table: DispatchTable | None = None, adapters: Iterable[Adapter] | None = None,
          builder: Callable[[dict, Any], Callable] | None = None,
          max_atol: float | None = None, max_rtol: float | None = None,
          engine: str = "auto") -> ApplyRuntime:
    """Patch ``module`` (flashinfer by default) to serve with the dataset's best kernels.

    ``hardware``: "auto" (this machine's GPU name, or "cpu: <model>"), a hardware name as stored in
    ``evaluations.environment.hardware``, or None to rank every hardware together.
    ``table``: a precomputed ``DispatchTable`` (skips reading evaluations).
    ``builder``: ``(solution_row, device) -> callable``; default ``fib_data.executor.build``.
    """
    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    if hardware == "auto":
        hardware = detect_hardware(ds)
    if table is None:
        table = build_table(ds, hardware, policy, max_atol=max_atol, max_rtol=max_rtol,
                            engine=engine)
    return ApplyRuntime(ds, table, hardware, module, adapters, builder)


def detect_hardware(ds: Dataset | None = None) -> str:
    """This machine's hardware name as the executor records it (``environment.hardware``),
    spelled as the dataset spells it when it knows it under a different case or punctuation."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
    else:
        from ..executor.environment import cpu_name

        name = f"cpu: {cpu_name()}"
    if ds is None:
        return name
    known = {env["hardware"] for env in ds.read("evaluations", ["environment"])
             .column("environment").to_pylist()}
    if name in known:
        return name
    folded = {_fold(k): k for k in known}
    return folded.get(_fold(name), name)


def _fold(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())
