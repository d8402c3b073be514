"""GPU and host cost of the input-checksum reductions: two contiguous sums (all words, odd words)
against one reduction over a [n/2, 2] view (even and odd words).

    python benchmarks/gpu/checksum_reductions.py     # seconds on an H100
"""

from __future__ import annotations

import time

import torch


def main() -> None:
    dev = "cuda:0"
    print(f"{'words':>10} {'rows':>5} {'method':12} {'gpu us':>8} {'host us':>8}")
    for n, k in ((1 << 14, 1), (1 << 21, 1), (1 << 23, 1), (1 << 14, 29), (1 << 19, 29)):
        rows = torch.randint(-2**62, 2**62, (k, n), device=dev, dtype=torch.int64)
        ways = {"two sums": lambda: torch.stack([rows.sum(1, dtype=torch.int64),
                                                 rows[:, 1::2].sum(1, dtype=torch.int64)], 1),
                "pair view": lambda: rows.view(k, -1, 2).sum(1, dtype=torch.int64)}
        assert torch.equal(ways["pair view"]().sum(1), ways["two sums"]()[:, 0])
        for name, fn in ways.items():
            for _ in range(5):
                fn()
            torch.cuda.synchronize()
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(100):
                fn()
            stop.record()
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(100):
                fn()
            host = (time.perf_counter() - t) / 100
            torch.cuda.synchronize()
            print(f"{n:>10} {k:>5} {name:12} {1e3 * start.elapsed_time(stop) / 100:8.1f} {1e6 * host:8.1f}")


if __name__ == "__main__":
    main()
