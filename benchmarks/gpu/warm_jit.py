"""Build (JIT-compile) the shipped solutions that need a build, in parallel, ahead of a benchmark.

    python benchmarks/gpu/warm_jit.py [SUBSTR ...]    # solutions whose name contains any SUBSTR

flashinfer compiles each kernel on first use and keeps it in ~/.cache/flashinfer; a device
session can start the slowest builds (the CUTLASS MoE takes minutes) in the background while other
work runs. Uses the executor's prebuild (one spawn process per solution, its smallest workload).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def main() -> int:
    from fib_data.curated.catalog import definitions
    from fib_data.curated.solutions import solutions
    from fib_data.curated.workloads import default_specs, make_workload
    from fib_data.blobs import BlobStore
    from fib_data.executor.prebuild import prebuild

    wanted = sys.argv[1:]
    store = BlobStore(Path(tempfile.mkdtemp()) / "blobs")
    defs = {d["name"]: d for d in definitions()}
    jobs = []
    for sol in solutions(list(defs.values())):
        if wanted and not any(w in sol["name"] for w in wanted):
            continue
        d = defs[sol["definition"]]
        spec = dict(default_specs(d, "full")[0])
        spec.pop("notes")
        wl = make_workload(d, spec.pop("axes"), store, **spec)
        blobs = {i["sha256"]: store.get_bytes(i["sha256"]) for i in wl["inputs"] if i["type"] == "safetensors"}
        jobs.append({"definition": d, "workload": wl, "solution": sol, "blobs": blobs})
    result = prebuild(jobs, ["cuda:0"], timeout=3000,
                      on_done=lambda n, s, e: print(f"{n}: {s:.0f} s" + (f" FAILED {e}" if e else ""), flush=True))
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
