"""Where a fresh worker's start goes: `import torch` and the first CUDA call.

Each variant runs in fresh processes, alternating, so machine drift hits all alike.
Also reports whether torch's bytecode cache exists and is used, since a read-only
install without `.pyc` files compiles every module on every start.

    python benchmarks/gpu/import_cost.py [--rounds 4] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

PROBE = (
    "import time; t0 = time.perf_counter(); import torch; t1 = time.perf_counter();"
    "ok = torch.cuda.is_available();"
    "torch.zeros(1, device='cuda').sum().item() if ok else None;"
    "t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
)


def _run(env_extra: dict[str, str]) -> tuple[float, float]:
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def _bytecode_facts() -> dict:
    import importlib.util

    torch_dir = os.path.dirname(importlib.util.find_spec("torch").origin)
    cache = os.path.join(torch_dir, "__pycache__")
    verbose = subprocess.run([sys.executable, "-v", "-c", "import torch"],
                             capture_output=True, text=True).stderr.splitlines()
    return {
        "torch_dir": torch_dir,
        "pycache_exists": os.path.isdir(cache),
        "pycache_files": len(os.listdir(cache)) if os.path.isdir(cache) else 0,
        "torch_dir_writable": os.access(torch_dir, os.W_OK),
        "loaded_from_pyc": sum("# code object from" in line for line in verbose),
        "compiled_from_source": sum(line.startswith("# wrote ") or "could not write" in line
                                    or "can't create" in line for line in verbose),
        "dont_write_bytecode": sys.flags.dont_write_bytecode,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out")
    ap.add_argument("--only", help="comma-separated variant names")
    args = ap.parse_args()
    prefix = tempfile.mkdtemp(prefix="fib-pyc-")
    variants = {
        "default": {},
        "no_backend_autoload": {"TORCH_DEVICE_BACKEND_AUTOLOAD": "0"},
        "pycache_prefix": {"PYTHONPYCACHEPREFIX": prefix},
        # Sandboxes such as gVisor make each page fault costly: fewer, larger pages may help.
        "malloc_hugetlb": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
        "pymalloc_off_hugetlb": {"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
        "malloc_top_pad": {"PYTHONMALLOC": "malloc", "MALLOC_TOP_PAD_": str(1 << 30)},
    }
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only.split(",")}
    facts = _bytecode_facts()
    for path in ("/sys/kernel/mm/transparent_hugepage/enabled", "/proc/version"):
        try:
            facts[path] = open(path).read().strip()
        except OSError as exc:
            facts[path] = f"unreadable: {exc}"
    print(json.dumps(facts, indent=1), flush=True)
    times: dict[str, list] = {name: [] for name in variants}
    for r in range(args.rounds):
        for name, extra in variants.items():
            imp, cuda = _run(extra)
            times[name].append([round(imp, 3), round(cuda, 3)])
            print(f"round {r} {name:22s} import {imp:6.2f} s  first cuda call {cuda:5.2f} s",
                  flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"facts": facts, "times": times}, f, indent=1)


if __name__ == "__main__":
    main()
