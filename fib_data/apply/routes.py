"""Where a patched call goes: the hot path (`Site.call`) and the cold path that decides it
(`Site.miss` -> `resolve`).

An adapter hands its arguments over as a tuple in a fixed slot order (``Site.slots``), plus a
hashable key of everything that decides the route (shapes, dtypes, device, scalar options).
A ``Choice`` is what runs for one definition at one evaluated shape (bucket) on one device: a
built solution, or the original function and why. A ``Route`` binds a choice to one key, with
the output shapes that key implies. On a hit the hot path is a dict lookup, an argument
permutation (none when the adapter's slots follow the definition's order) and the call; SQL,
matching and distances run once per new key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from .matching import DefinitionSpec, match
from .nearest import nearest

if TYPE_CHECKING:
    from .runtime import ApplyRuntime

#: Memo entries per site before it is cleared; a serving engine's call signatures number in the
#: hundreds to thousands, so this only guards against unbounded growth.
MEMO_LIMIT = 4096


class Choice:
    __slots__ = ("entry", "definition", "bucket", "solution", "solution_hash", "reason", "fn",
                 "dps", "order", "output_names", "alive", "calls")

    def __init__(self, entry: str, definition: str | None, bucket: tuple | None,
                 solution: str | None, solution_hash: str | None, reason: str,
                 fn: Callable | None = None, dps: bool = False, order: tuple[int, ...] | None = None,
                 output_names: tuple[str, ...] = ()):
        self.entry, self.definition, self.bucket = entry, definition, bucket
        self.solution, self.solution_hash, self.reason = solution, solution_hash, reason
        self.fn, self.dps, self.order, self.output_names = fn, dps, order, output_names
        self.alive = True
        self.calls = 0


class Route:
    __slots__ = ("choice", "out_shapes", "out_dtypes", "device", "checked")

    def __init__(self, choice: Choice, out_shapes=(), out_dtypes=(), device=None):
        self.choice, self.out_shapes, self.out_dtypes = choice, list(out_shapes), list(out_dtypes)
        self.device, self.checked = device, False


class Site:
    """One patched entry point: its definition family, argument slots and memo."""

    def __init__(self, runtime: "ApplyRuntime", entry: str, prefixes: tuple[str, ...],
                 slots: tuple[str, ...], aliases: Mapping[str, str] | None = None,
                 weights: Mapping[str, float] | None = None):
        self.runtime = runtime
        self.entry = entry
        self.prefixes = prefixes
        self.slots = slots
        self.index = {name: i for i, name in enumerate(slots)}
        self.index.update({alias: self.index[slot] for alias, slot in (aliases or {}).items()})
        self.weights = dict(weights or {})
        self.memo: dict[Any, Route] = {}
        self._choices: dict[tuple, Choice] = {}
        #: Non-zero while a substitute runs: a solution that itself calls flashinfer (a wrapper
        #: solution) must reach the originals, not recurse into dispatch. Shared by all sites and
        #: threads: a call from another thread meanwhile simply takes the original.
        self.busy = runtime.busy
        #: plan() captures of wrapper-class adapters (``adapters.paged.Plans``), else None.
        self.plans = None

    # ---- hot path ------------------------------------------------------------------------
    def call(self, route: Route, vals: tuple) -> list | None:
        """Run the route's solution on ``vals`` (slot order); None means: run the original."""
        choice = route.choice
        choice.calls += 1
        fn = choice.fn
        if fn is None:
            return None
        order = choice.order
        args = vals if order is None else [vals[i] for i in order]
        busy = self.busy
        busy[0] += 1
        try:
            if choice.dps:
                empty, device = self.runtime.empty, route.device
                outs = [empty(s, dtype=d, device=device)
                        for s, d in zip(route.out_shapes, route.out_dtypes)]
                fn(*args, *outs)
            else:
                res = fn(*args)
                outs = list(res) if isinstance(res, (tuple, list)) else (
                    [res[n] for n in choice.output_names] if isinstance(res, dict) else [res])
            if not route.checked:
                _check_outputs(route, outs)
                route.checked = True
            return outs
        except Exception as exc:  # noqa: BLE001 - any failure of a substitute means: fall back
            choice.calls -= 1
            self.runtime.solution_raised(self, choice, exc)
            return None
        finally:
            busy[0] -= 1

    # ---- cold path -----------------------------------------------------------------------
    def miss(self, key: Any, vals: tuple, consts: Mapping[str, int] | None = None,
             params: Mapping[str, float] | None = None,
             prefixes: tuple[str, ...] | None = None) -> Route:
        if len(self.memo) >= MEMO_LIMIT:
            self.memo.clear()
        try:
            route = self.resolve(vals, consts, params, prefixes)
        except Exception as exc:  # noqa: BLE001 - a bug or odd data here must not break serving
            route = Route(self._fallback(None, f"apply could not resolve this call: "
                                               f"{type(exc).__name__}: {exc}"))
        self.memo[key] = route
        return route

    def resolve(self, vals: tuple, consts: Mapping[str, int] | None = None,
                params: Mapping[str, float] | None = None,
                prefixes: tuple[str, ...] | None = None) -> Route:
        """``prefixes`` narrows the family for this call (e.g. causal vs non-causal prefill)."""
        rt = self.runtime
        values = {name: vals[i] for name, i in self.index.items()}
        spec, axes, why = match(rt.specs, prefixes or self.prefixes, consts or {}, values, params)
        if spec is None:
            return Route(self._fallback(None, why))
        device = _device_of(vals)
        if not rt.device_ok(device):
            return Route(self._fallback(spec.name, f"call on {device}, table is for {rt.hardware}"))
        table = rt.table.definitions.get(spec.name)
        if table is None or not table.buckets:
            return Route(self._fallback(spec.name, f"no evaluations of {spec.name} on {rt.hardware}"))
        bucket, dist = nearest(axes, table.buckets, [self.weights.get(a, 1.0) for a in table.var_axes])
        call_axes = dict(zip(spec.var_axes, axes))
        key = (spec.name, bucket.axes, str(device))
        choice = self._choices.get(key)
        if choice is None or not choice.alive:
            choice = self._choices[key] = self._choose(spec, bucket, dist, device, call_axes)
        return Route(choice, spec.output_shapes(call_axes),
                     [rt.torch_dtype(o.dtype) for o in spec.outputs], device)

    def _choose(self, spec: DefinitionSpec, bucket, dist: float, device, call_axes) -> Choice:
        rt = self.runtime
        where = f"nearest shape {dict(zip(spec.var_axes, bucket.axes))} (distance {dist:.2f})"
        if not bucket.candidates:
            return self._log(Choice(self.entry, spec.name, bucket.axes, None, None,
                                    f"no correct solution at {where}"), call_axes)
        order = tuple(self.index[name] for name in spec.input_names)
        order = None if order == tuple(range(len(self.slots))) else order
        skipped = []
        for cand in bucket.candidates:
            blocked = rt.blocked(cand.solution_hash, spec.name, bucket.axes)
            fn, row = (None, None) if blocked else rt.build(cand, device, self.entry)
            if fn is None:
                skipped.append(f"{cand.solution} ({blocked or 'build failed'})")
                continue
            note = f"; skipped {', '.join(skipped)}" if skipped else ""
            return self._log(Choice(
                self.entry, spec.name, bucket.axes, cand.solution, cand.solution_hash,
                f"fastest correct at {where}: {cand.latency_ms:.4g} ms{note}", fn,
                bool(row["destination_passing_style"]), order,
                tuple(o.name for o in spec.outputs)), call_axes)
        return self._log(Choice(self.entry, spec.name, bucket.axes, None, None,
                                f"every correct solution at {where} is unusable: "
                                f"{', '.join(skipped)}"), call_axes)

    def _fallback(self, definition: str | None, reason: str) -> Choice:
        key = (definition, reason)
        choice = self._choices.get(key)
        if choice is None:
            choice = self._choices[key] = self._log(
                Choice(self.entry, definition, None, None, None, reason), None)
        return choice

    def _log(self, choice: Choice, call_axes) -> Choice:
        self.runtime.record(choice, call_axes)
        return choice

    def forget(self, choice: Choice) -> None:
        choice.alive = False
        self.memo.clear()


def _device_of(vals: tuple):
    for v in vals:
        device = getattr(v, "device", None)
        if device is not None:
            return device
    return None


def _check_outputs(route: Route, outs: list) -> None:
    if len(outs) != len(route.out_shapes):
        raise ValueError(f"solution returned {len(outs)} outputs, definition has "
                         f"{len(route.out_shapes)}")
    for i, (o, shape, dtype) in enumerate(zip(outs, route.out_shapes, route.out_dtypes)):
        if tuple(o.shape) != tuple(shape) or o.dtype != dtype:
            raise ValueError(f"output {i}: {tuple(o.shape)} {o.dtype}, expected {shape} {dtype}")
