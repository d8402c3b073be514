"""Plots as inline SVG, so the site is a handful of files that work offline."""

from __future__ import annotations

import io


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: inline SVG needs neither


def _figure(width: float = 7.0, height: float = 3.6):
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "fib-data"})
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def fast_p_svg(frame, level: str = "language") -> str:
    """fast_p against p, one line per (name, hardware) of the given level of the fast_p query."""
    fig, ax = _figure()
    rows = frame.filter(frame["level"] == level).sort("hardware", "name", "p")
    for (name, hardware), part in rows.group_by(["name", "hardware"], maintain_order=True):
        ax.plot(part["p"].to_list(), [100 * v for v in part["fast_p"].fill_null(0).to_list()],
                label=f"{name} ({hardware})", linewidth=1.5)
    ax.set_xlabel("p (speedup over the reference)")
    ax.set_ylabel(f"fast_p, % of workloads ({level})")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if rows.height:
        ax.legend(fontsize=8, frameon=False)
    return _svg(fig)


def latency_svg(frame, axis: str) -> str:
    """Latency of each solution against one workload axis (roofline query rows)."""
    fig, ax = _figure(6.0, 3.2)
    for (solution, hardware), part in frame.sort(axis).group_by(["solution", "hardware"], maintain_order=True):
        ax.plot(part[axis].to_list(), part["latency_ms"].to_list(), marker="o", markersize=3,
                linewidth=1, label=f"{solution} ({hardware})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(axis)
    ax.set_ylabel("latency (ms)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    return _svg(fig)
