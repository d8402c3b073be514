"""Text for ``explain()`` and ``fib dispatch``: the dispatch table, the patched entry points and
the substitution log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .runtime import ApplyRuntime
    from .table import DispatchTable


def table_text(table: "DispatchTable",
               blocked: Callable[[str, str, tuple], str | None] | None = None) -> str:
    lines = [f"dispatch table for hardware={table.hardware!r} policy={table.policy} "
             f"(digest {table.digest[:12]})"]
    if not table.definitions:
        lines.append("  (no evaluations for this hardware: every call runs the original)")
    for name, dt in sorted(table.definitions.items()):
        lines.append(f"  {name}  var axes: {', '.join(dt.var_axes)}")
        for b in dt.buckets:
            shape = ", ".join(f"{a}={v}" for a, v in zip(dt.var_axes, b.axes))
            if not b.candidates:
                lines.append(f"    [{shape}]  fallback: 0/{b.evaluated} correct")
                continue
            ranked = " > ".join(
                f"{c.solution}({c.latency_ms:.3g})"
                + (" [blocked]" if blocked and blocked(c.solution_hash, name, b.axes) else "")
                for c in b.candidates)
            lines.append(f"    [{shape}]  {b.candidates[0].latency_ms:.4g} ms  "
                         f"{len(b.candidates)}/{b.evaluated} correct: {ranked}")
    return "\n".join(lines)


def explain(rt: "ApplyRuntime") -> str:
    lines = [table_text(rt.table, rt.blocked),
             "patched: " + (", ".join(s.entry for s in rt.sites) or "nothing")]
    if rt.skipped_targets:
        lines.append("absent in this flashinfer: " + ", ".join(rt.skipped_targets))
    lines.append("log:")
    for e in rt.log:
        what = e.solution if e.action == "substitute" else e.action
        axes = f" {e.call_axes}" if e.call_axes else ""
        lines.append(f"  {e.entry or '-'} -> {e.definition or '-'}{axes}: {what} "
                     f"[{e.calls} calls] {e.reason}")
    return "\n".join(lines)
