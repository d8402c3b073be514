"""Where FP8 block-scaled GEMM outputs differ from the reference, and by how much.

    source .gpu_wheels/device_env.sh && python3 benchmarks/gpu/fp8_check.py     # ~2 min (flashinfer JIT)

For gemm_fp8_block_scale_n1536_k7168 at a few M, on the executor's inputs (N(0,1) cast to e4m3,
scales |N(0,1)| + 0.5): the exact product in float64 is the yardstick for the reference (fp32, then
bf16) and for every shipped solution (torch, triton, flashinfer), plus flashinfer called directly
with the scale layouts one might try. Per output: max |err| vs exact, the |exact| where it
happens, the error relative to the output's RMS, the count of elements outside the definition's
bf16 tolerance when compared with the reference, and cosine similarity. Writes fp8_check.json to $OUT.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import bench_kernels as K  # noqa: E402
from fib_data.curated.catalog import by_name  # noqa: E402
from fib_data.curated.solutions import solutions  # noqa: E402
from fib_data.executor import build_solution, make_inputs  # noqa: E402
from fib_data.executor.correctness import compare, tolerance_for  # noqa: E402

NAME = "gemm_fp8_block_scale_n1536_k7168"


def exact(x) -> torch.Tensor:
    a = x["A"].double() * x["A_scale"].double().repeat_interleave(128, 1)
    b = x["B"].double() * x["B_scale"].double().repeat_interleave(128, 0).repeat_interleave(128, 1)
    return a @ b.T


def stats(out: torch.Tensor, truth: torch.Tensor, ref: torch.Tensor, tol) -> dict:
    err = (out.double() - truth).abs()
    worst = int(err.argmax())
    rms = float(truth.pow(2).mean().sqrt())
    c = compare(out, ref, *tol)
    cos = float(torch.nn.functional.cosine_similarity(out.double().flatten(), truth.flatten(), dim=0))
    return {"max_abs_vs_exact": float(err.max()), "at_abs_exact": float(truth.flatten()[worst].abs()),
            "p99_abs_vs_exact": float(err.flatten().kthvalue(int(0.99 * err.numel())).values),
            "max_abs_over_rms": float(err.max()) / rms, "rms": rms,
            "vs_reference_max_abs": c["max_abs"], "vs_reference_mismatched": c["mismatched"],
            "numel": c["numel"], "cosine": cos}


def flashinfer_variants(x):
    from flashinfer.gemm import fp8_blockscale_gemm_sm90

    M = x["A"].shape[0]
    t_scale = torch.zeros(x["A_scale"].shape[1], (M + 3) // 4 * 4, dtype=torch.float32, device="cuda")
    t_scale[:, :M] = x["A_scale"].T
    per_token_w = x["B_scale"].repeat_interleave(128, 0).contiguous()
    yield "fi a_scale [M,K/128] as given", lambda: fp8_blockscale_gemm_sm90(x["A"], x["B"], x["A_scale"], x["B_scale"])
    yield "fi a_scale [K/128,M] (solution)", lambda: fp8_blockscale_gemm_sm90(x["A"], x["B"], t_scale, x["B_scale"])
    yield "fi a_scale [K/128,M], w per-token", lambda: fp8_blockscale_gemm_sm90(x["A"], x["B"], t_scale, per_token_w)
    yield "fi a_scale as given, w per-token", lambda: fp8_blockscale_gemm_sm90(x["A"], x["B"], x["A_scale"], per_token_w)


def main() -> int:
    d = by_name()[NAME]
    ns: dict = {}
    exec(compile(d["reference"], NAME, "exec"), ns)
    tol = tolerance_for(d, "bfloat16")
    sols = {s["name"].rsplit("__", 1)[1]: s for s in solutions([d])
            if not (K.no_jit() and "flashinfer" in s["name"])}
    rows = []
    for m in (8, 128, 1024):
        wl = {"uuid": f"fp8-m{m}", "axes": [{"name": "M", "value": m}],
              "inputs": [{"name": i["name"], "type": "random"} for i in d["inputs"]]}
        x = make_inputs(d, wl, {}, "cuda", seed=3)
        truth = exact(x)
        ref = ns["run"](*x.values())
        calls = [("reference (fp32 -> bf16)", lambda: ref)]
        for tag, sol in sols.items():
            fn = build_solution(sol, "cuda")

            def run(fn=fn, sol=sol):
                out = torch.full((m, 1536), float("nan"), dtype=torch.bfloat16, device="cuda")
                res = fn(*x.values(), out) if sol["destination_passing_style"] else fn(*x.values())
                return out if sol["destination_passing_style"] else res
            calls.append((f"solution {tag}", run))
        try:
            if not K.no_jit():
                calls += list(flashinfer_variants(x))
        except Exception:
            traceback.print_exc()
        for label, call in calls:
            row = {"M": m, "what": label}
            try:
                out = call()
                torch.cuda.synchronize()
                row.update(stats(out, truth, ref, tol))
            except Exception as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"[:200]
            rows.append(row)
            print(f"M={m:5} {label:36} " + (f"max|err| {row['max_abs_vs_exact']:9.4f} at |y|={row['at_abs_exact']:8.2f} "
                  f"p99 {row['p99_abs_vs_exact']:8.4f} max/rms {row['max_abs_over_rms']:.2e} "
                  f"vs ref: max {row['vs_reference_max_abs']:8.4f} bad {row['vs_reference_mismatched']}/{row['numel']} "
                  f"cos {row['cosine']:.6f}" if "error" not in row else row["error"]), flush=True)
    K.save_json("fp8_check.json", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
