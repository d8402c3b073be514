"""``fib report``: a static HTML leaderboard site built from the queries in ``queries/``."""

from .site import build_report

__all__ = ["build_report"]
