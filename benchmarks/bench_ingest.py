"""Throughput and memory of SGLang log ingestion on a generated log (default 1 GB).

    python benchmarks/bench_ingest.py [--size-mb 1024] [--keep PATH] [--full] [--threads 1]

The log mixes the format variants seen in the wild (2024 ``cache hit rate``, 2025
``timestamp``, 2026 ``,`` separator with ``full token usage``, rank tags, docker and k8s prefixes,
mixed-chunk prefill) with a few bad lines, and noise lines that are not batch lines. Parsing runs
in a child process so that its peak RSS (ru_maxrss) is measured alone; throughput is reported
per wall second and per CPU second (user+sys of the child, imports included; with
``--threads 1`` polars uses one thread, which gives the "per core" figure).
With ``--full`` the child runs the whole ``fib ingest`` (mapping and the dataset write) too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PREFIXES = ["", "sglang-1  | ", "2026-05-20T08:02:45.123456789Z stdout F "]
# One log holds one rank layout; DP groups are distinct schedulers, so all of these are kept.
TAGS = ["DP0 TP0 EP0", "DP1 TP4 EP4", "DP2 TP8 EP8"]


def _line(rng: random.Random, i: int) -> str:
    prefix = rng.choice(PREFIXES)
    stamp = f"[2026-05-20 08:{(i // 60) % 60:02d}:{i % 60:02d} {rng.choice(TAGS)}]"
    sep = rng.choice(".,")
    r = rng.random()
    if r < 0.25:
        seq = rng.randint(1, 8)
        new = rng.randint(seq, 16384)
        cached = rng.choice([0, 0, rng.randint(0, 8192)])
        tail = rng.choice([
            f"cache hit rate: {rng.random() * 100:.2f}%, token usage: 0.{rng.randint(0, 99):02d}, #running-req: {rng.randint(0, 200)}, #queue-req: {rng.randint(0, 50)}",
            f"token usage: 0.{rng.randint(0, 99):02d}, #running-req: {rng.randint(0, 200)}, #queue-req: 3, timestamp: 2025-07-18T15:32:52.498932",
            "full token usage: 0.10, #running-req: 0, #queue-req: 0, #prealloc-req: 0, #inflight-req: 0, input throughput (token/s): 1000.0",
        ])
        head = "Prefill batch" + (f"(mixed #running-req: {rng.randint(1, 64)})" if rng.random() < 0.05 else "")
        return f"{prefix}{stamp} {head}{sep} #new-seq: {seq}, #new-token: {new}, #cached-token: {cached}, {tail}"
    if r < 0.95:
        run = rng.randint(1, 512)
        tok = rng.randint(run, 900000)
        gr = rng.choice(["", "cuda graph: True, "])
        return (f"{prefix}{stamp} Decode batch{sep} #running-req: {run}, #token: {tok}, token usage: 0.{rng.randint(0, 99):02d}, "
                f"{gr}gen throughput (token/s): {rng.random() * 5000:.2f}, #queue-req: {rng.randint(0, 40)}")
    if r < 0.995:
        return f"{prefix}[2026-05-20 08:00:00] INFO:     127.0.0.1:5{rng.randint(1000, 9999)} - \"POST /generate HTTP/1.1\" 200 OK"
    return f"{prefix}{stamp} Decode batch{sep} #running-req: {rng.randint(1, 512)}, #token: 4, token usage: 0.90, #queue"


def generate(path: Path, size_mb: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    target = size_mb << 20
    written = 0
    header = ("[2026-05-20 08:00:00] max_total_num_tokens=980344, chunked_prefill_size=16384, "
              "max_prefill_tokens=16384, max_running_requests=3063, context_len=163840\n")
    # A block of generated lines repeated with fresh numbers is too slow in pure Python for 1 GB;
    # generate 512k distinct lines once and cycle them (their mix is what matters for parsing).
    block = "\n".join(_line(rng, i) for i in range(1 << 19)).encode() + b"\n"
    with open(path, "wb") as fh:
        fh.write(header.encode())
        written += len(header)
        while written < target:
            fh.write(block)
            written += len(block)
    return written


def child(path: str, full: bool, dataset: str | None) -> None:
    start = time.perf_counter()
    cpu0 = time.process_time()
    if full:
        from fib_data.ingest.driver import IngestOptions, ingest

        report = ingest([Path(path)], IngestOptions(model="llama-3.1-8b", fmt="sglang", bucketing="pow2"),
                        dataset)
        batches = report.batches_found
        extra = {"workloads": sum(report.workloads.values())}
    else:
        from fib_data.ingest import sglang
        from fib_data.ingest.report import IngestReport

        report = IngestReport()
        frame = sglang.parse([Path(path)], report)
        batches = report.batches_found
        extra = {"distinct_shapes": frame.height}
    wall = time.perf_counter() - start
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "parse_cpu_s": time.process_time() - cpu0,
                      "peak_rss_mb": ru.ru_maxrss / 1024, "batches": batches,
                      "skipped": sum(report.skipped.values()), **extra}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--keep", type=Path, help="Reuse/keep the generated log at this path.")
    ap.add_argument("--full", action="store_true", help="Run the whole fib ingest, not only the parser.")
    ap.add_argument("--threads", type=int, default=None, help="POLARS_MAX_THREADS for the child.")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.full, None if args.child[1] == "-" else args.child[1])
        return
    tmp = tempfile.TemporaryDirectory()
    path = args.keep or Path(tmp.name) / "sglang.log"
    if not path.exists():
        t = time.perf_counter()
        generate(path, args.size_mb)
        print(f"generated {path} in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    size = path.stat().st_size
    dataset = "-"
    if args.full:
        from fib_data.dataset import Dataset

        dataset = str(Path(tmp.name) / "ds")
        Dataset.create(dataset)
    env = dict(os.environ)
    if args.threads:
        env["POLARS_MAX_THREADS"] = str(args.threads)
    cmd = [sys.executable, __file__, "--child", str(path), dataset] + (["--full"] if args.full else [])
    out = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
    mb = size / 2**20
    print(f"log {mb:.0f} MB, {out['batches']} batch lines, {out['skipped']} skipped")
    print(f"wall {out['wall_s']:.1f}s -> {mb / out['wall_s']:.0f} MB/s; cpu {out['cpu_s']:.1f}s "
          f"-> {mb / out['cpu_s']:.0f} MB/s per core; peak RSS {out['peak_rss_mb']:.0f} MB")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
