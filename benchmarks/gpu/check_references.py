"""Check every curated reference against the matching flashinfer API on a GPU.

For each definition in ``fib_data.curated.catalog`` and two of its full-profile workloads, build
the inputs the way the executor does (structured tensors from the workload generator, N(0, 1)
floats, the reference's ``prepare``), run the reference and the flashinfer call on the same
inputs, and report max absolute / relative error against the definition's tolerances. Sampling
is compared statistically (total variation distance of many draws, and never a token outside the
top-k / top-p set). One failing item never stops the rest; a time budget skips what is left.

    source .gpu_wheels/device_env.sh && python3 benchmarks/gpu/check_references.py [--only SUBSTR ...]

Needs only torch, flashinfer, numpy, safetensors, pyarrow. Writes check_references.json to $OUT.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fib_data.blobs import BlobStore  # noqa: E402
from fib_data.curated.catalog import definitions  # noqa: E402
from fib_data.curated.workloads import default_specs, make_workload  # noqa: E402

DEV = "cuda"
BF16 = torch.bfloat16
WORKSPACE = None
STORE = BlobStore(Path(tempfile.mkdtemp()) / "blobs")


def workspace() -> torch.Tensor:
    global WORKSPACE
    if WORKSPACE is None:
        WORKSPACE = torch.empty(256 * 2**20, dtype=torch.uint8, device=DEV)
    return WORKSPACE


# ---- inputs and reference ---------------------------------------------------------------------
def namespace(defn: dict) -> dict:
    ns: dict = {}
    exec(compile(defn["reference"], defn["name"], "exec"), ns)
    return ns


def picked_specs(defn: dict) -> list[dict]:
    """A small and a mid-sized serving workload from the full profile."""
    specs = default_specs(defn, "full")
    return [specs[1], specs[len(specs) // 2]] if len(specs) > 2 else specs


def make_inputs(defn: dict, spec: dict, seed: int = 0) -> tuple[dict, dict, str]:
    spec = dict(spec)
    notes = spec.pop("notes")
    row = make_workload(defn, spec.pop("axes"), STORE, **spec)
    axes = {a["name"]: a["value"] for a in defn["axes"] if a["type"] == "const"}
    axes.update({a["name"]: a["value"] for a in row["axes"]})
    gen = torch.Generator(device=DEV).manual_seed(seed)
    out = {}
    for s, how in zip(defn["inputs"], row["inputs"]):
        if how["type"] == "safetensors":
            out[s["name"]] = STORE.load(how["sha256"], framework="torch", device=DEV)[how["tensor_key"]]
        elif how["type"] == "scalar":
            out[s["name"]] = float(json.loads(how["value"]))
        else:
            shape = [axes[d] for d in s["shape"]]
            out[s["name"]] = torch.randn(shape, generator=gen, device=DEV).to(getattr(torch, s["dtype"]))
    prepare = namespace(defn).get("prepare")
    return (prepare(out, axes) if prepare else out), axes, notes


def reference(defn: dict, x: dict) -> tuple:
    result = namespace(defn)["run"](*(x[i["name"]] for i in defn["inputs"]))
    if isinstance(result, dict):
        result = tuple(result[o["name"]] for o in defn["outputs"])
    return result if isinstance(result, tuple) else (result,)


# ---- flashinfer calls, one per op family -------------------------------------------------------
def fi_gqa_decode(defn, x, axes):
    import flashinfer

    batch = axes["batch_size"]
    last = x.get("kv_last_page_len")
    if last is None:
        last = torch.ones(batch, dtype=torch.int32, device=DEV)
    w = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace(), "NHD")
    w.plan(x["kv_indptr"], x["kv_indices"], last, axes["num_qo_heads"], axes["num_kv_heads"],
           axes["head_dim"], axes["page_size"], q_data_type=BF16, kv_data_type=BF16, sm_scale=x["sm_scale"])
    return w.run(x["q"], (x["k_cache"], x["v_cache"]), return_lse=True)


def fi_gqa_paged_prefill(defn, x, axes):
    import flashinfer

    w = flashinfer.BatchPrefillWithPagedKVCacheWrapper(workspace(), "NHD")
    w.plan(x["qo_indptr"], x["kv_indptr"], x["kv_indices"], x["kv_last_page_len"], axes["num_qo_heads"],
           axes["num_kv_heads"], axes["head_dim"], axes["page_size"], causal=True, sm_scale=x["sm_scale"],
           q_data_type=BF16, kv_data_type=BF16)
    return w.run(x["q"], (x["k_cache"], x["v_cache"]), return_lse=True)


def fi_gqa_ragged_prefill(defn, x, axes):
    import flashinfer

    w = flashinfer.BatchPrefillWithRaggedKVCacheWrapper(workspace(), "NHD")
    w.plan(x["qo_indptr"], x["kv_indptr"], axes["num_qo_heads"], axes["num_kv_heads"], axes["head_dim"],
           causal=True, sm_scale=x["sm_scale"], q_data_type=BF16, kv_data_type=BF16)
    return w.run(x["q"], x["k"], x["v"], return_lse=True)


def fi_mla_decode(defn, x, axes):
    import flashinfer

    batch = axes["batch_size"]
    qo_indptr = torch.arange(batch + 1, dtype=torch.int32, device=DEV)
    kv_len = (x["kv_indptr"][1:] - x["kv_indptr"][:-1]).int()  # page size 1: pages are tokens
    w = flashinfer.mla.BatchMLAPagedAttentionWrapper(workspace())
    plan = dict(qo_indptr=qo_indptr, kv_indptr=x["kv_indptr"], kv_indices=x["kv_indices"], kv_len_arr=kv_len,
                num_heads=axes["num_qo_heads"], head_dim_ckv=axes["head_dim_ckv"],
                head_dim_kpe=axes["head_dim_kpe"], page_size=axes["page_size"], causal=False,
                sm_scale=x["sm_scale"], q_data_type=BF16, kv_data_type=BF16)
    w.plan(**plan)  # flat CSR plan: lse at run time is base 2 unless asked for base e
    return w.run(q_nope=x["q_nope"], q_pe=x["q_pe"], ckv_cache=x["ckv_cache"], kpe_cache=x["kpe_cache"],
                 return_lse=True)


def fi_gemm(defn, x, axes):
    from flashinfer.gemm import mm_bf16

    errors = []
    for backend in ("cublaslt", "cutlass", "cudnn"):
        try:
            return (mm_bf16(x["A"], x["B"].T, backend=backend),), f"mm_bf16[{backend}]"
        except Exception as exc:  # a backend missing on this machine: try the next
            errors.append(f"{backend}: {str(exc).splitlines()[0][:80]}")
    return (x["A"] @ x["B"].T,), "torch.matmul (mm_bf16 failed: " + "; ".join(errors) + ")"


def fi_fp8_gemm(defn, x, axes):
    from flashinfer.gemm import fp8_blockscale_gemm_sm90

    # The kernel reads activation scales M-contiguous ([K/128, M], M padded to 4), DeepGEMM's
    # layout; the definition's [M, K/128] scales are transposed into it (as the solution does).
    m = x["A"].shape[0]
    a_scale = torch.zeros(x["A_scale"].shape[1], (m + 3) // 4 * 4, dtype=torch.float32, device=x["A"].device)
    a_scale[:, :m] = x["A_scale"].T
    return fp8_blockscale_gemm_sm90(x["A"], x["B"], a_scale, x["B_scale"])


def fi_rmsnorm(defn, x, axes):
    import flashinfer

    eps = namespace(defn)["EPS"]
    if "residual" in x:
        h, r = x["hidden_states"].clone(), x["residual"].clone()
        flashinfer.norm.fused_add_rmsnorm(h, r, x["weight"], eps)
        return h
    return flashinfer.norm.rmsnorm(x["hidden_states"], x["weight"], eps)


def fi_silu_and_mul(defn, x, axes):
    import flashinfer

    return flashinfer.activation.silu_and_mul(x["x"])


def fi_rope(defn, x, axes):
    import flashinfer

    ns = namespace(defn)
    return flashinfer.rope.apply_llama31_rope_pos_ids(
        x["q"], x["k"], x["pos_ids"], rotary_dim=axes["head_dim"], interleave=False,
        rope_scale=ns["ROPE_SCALE"], rope_theta=ns["ROPE_THETA"], low_freq_factor=ns["LOW_FREQ_FACTOR"],
        high_freq_factor=ns["HIGH_FREQ_FACTOR"], old_context_len=ns["OLD_CONTEXT_LEN"])


def fi_moe(defn, x, axes):
    from flashinfer.fused_moe import cutlass_fused_moe

    ns = namespace(defn)
    weights, experts = ns["route"](x["routing_logits"])
    inter = axes["intermediate_size"]
    gate, up = x["gate_up_weights"][:, :inter], x["gate_up_weights"][:, inter:]
    results = {}
    # TensorRT-LLM's fused SwiGLU reads GEMM1 rows as (up, gate) ("w3_w1"); try that first.
    for label, w13 in (("fc1=[up,gate]", torch.cat([up, gate], 1)), ("fc1=[gate,up]", x["gate_up_weights"])):
        out = torch.empty_like(x["hidden_states"])
        cutlass_fused_moe(x["hidden_states"], experts.int(), weights.float(), w13.contiguous(),
                          x["down_weights"], BF16, quant_scales=None, output=out)
        results[label] = out
    return results


def family(defn: dict) -> str:
    op, names = defn["op_type"], {i["name"] for i in defn["inputs"]}
    if op == "gqa_paged":
        return "gqa_paged_prefill" if "qo_indptr" in names else "gqa_decode"
    return op


CALLS = {"gqa_decode": fi_gqa_decode, "gqa_paged_prefill": fi_gqa_paged_prefill,
         "gqa_ragged": fi_gqa_ragged_prefill, "mla_paged": fi_mla_decode, "gemm": fi_gemm,
         "gemm_fp8_block_scale": fi_fp8_gemm, "rmsnorm": fi_rmsnorm, "silu_and_mul": fi_silu_and_mul,
         "rope": fi_rope, "moe": fi_moe}
API = {"gqa_decode": "BatchDecodeWithPagedKVCacheWrapper", "gqa_paged_prefill": "BatchPrefillWithPagedKVCacheWrapper",
       "gqa_ragged": "BatchPrefillWithRaggedKVCacheWrapper", "mla_paged": "BatchMLAPagedAttentionWrapper",
       "gemm_fp8_block_scale": "gemm.fp8_blockscale_gemm_sm90", "rmsnorm": "norm.rmsnorm / fused_add_rmsnorm",
       "silu_and_mul": "activation.silu_and_mul", "rope": "rope.apply_llama31_rope_pos_ids",
       "moe": "fused_moe.cutlass_fused_moe", "sampling": "sampling.top_k_top_p_sampling_from_probs"}


# ---- comparison --------------------------------------------------------------------------------
def errors(actual: torch.Tensor, expected: torch.Tensor, tol: dict) -> tuple[float, float, bool]:
    a, e = actual.double(), expected.double()
    if a.shape != e.shape:
        raise ValueError(f"shape {tuple(a.shape)} != reference {tuple(e.shape)}")
    finite = torch.isfinite(e)
    diff = (a - e).abs().masked_fill(~finite & (a == e), 0)
    max_abs = float(diff.max()) if diff.numel() else 0.0
    max_rel = float((diff / e.abs().clamp_min(1e-6)).max()) if diff.numel() else 0.0
    ok = bool((diff <= tol["atol"] + tol["rtol"] * e.abs()).all())
    return max_abs, max_rel, ok


def compare(defn: dict, got, expected: tuple) -> list[dict]:
    got = got if isinstance(got, (tuple, list)) else (got,)
    rows = []
    for spec, g, e in zip(defn["outputs"], got, expected):
        tol = next(t for t in defn["tolerances"] if t["dtype"] == spec["dtype"])
        max_abs, max_rel, ok = errors(g, e, tol)
        rows.append({"output": spec["name"], "max_abs": max_abs, "max_rel": max_rel,
                     "atol": tol["atol"], "rtol": tol["rtol"], "ok": ok})
    return rows


def check_sampling(defn: dict, x: dict, axes: dict, draws: int = 32768, chunk: int = 2048) -> list[dict]:
    """Draw many samples of a few rows with flashinfer and the reference; compare distributions."""
    import flashinfer

    ns = namespace(defn)
    rows = []
    for b in range(min(3, axes["batch_size"])):
        probs = x["probs"][b:b + 1].expand(chunk, -1).contiguous()
        k = x["top_k"][b:b + 1].expand(chunk).contiguous()
        p = x["top_p"][b:b + 1].expand(chunk).contiguous()
        kept = ns["filtered_probs"](probs[:1], k[:1], p[:1])[0].double()
        counts = {"flashinfer": torch.zeros_like(kept), "reference": torch.zeros_like(kept)}
        for _ in range(draws // chunk):
            fi = flashinfer.sampling.top_k_top_p_sampling_from_probs(probs, k, p).long()
            counts["flashinfer"] += torch.bincount(fi, minlength=kept.numel()).double()
            counts["reference"] += torch.bincount(ns["run"](probs, k, p), minlength=kept.numel()).double()
        for who, c in counts.items():
            outside = int(c[kept == 0].sum())
            tvd = 0.5 * float((c / c.sum() - kept).abs().sum())
            support = int((kept > 0).sum())
            # Expected TVD of an exact sampler is about 0.4 * sqrt(support / draws).
            bound = 0.05 + 0.6 * math.sqrt(support / draws)
            rows.append({"output": f"row{b}:{who} k={int(k[0])} p={float(p[0]):.2f}", "max_abs": tvd,
                         "max_rel": float(outside), "atol": bound, "rtol": 0.0,
                         "ok": outside == 0 and tvd <= bound})
    return rows


# ---- driver ------------------------------------------------------------------------------------
def check(defn: dict, spec: dict) -> tuple[str, str, list[dict]]:
    kind = family(defn)
    x, axes, notes = make_inputs(defn, spec)
    if kind == "sampling":
        return notes, API[kind], check_sampling(defn, x, axes)
    expected = reference(defn, x)
    torch.cuda.synchronize()
    got = CALLS[kind](defn, x, axes)
    api = API.get(kind, "")
    if isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], str):
        got, api = got
    if isinstance(got, dict):  # several layouts tried (MoE): keep the best, name it
        scored = {label: compare(defn, out, expected) for label, out in got.items()}
        label = min(scored, key=lambda k: max(r["max_abs"] for r in scored[k]))
        return notes, f"{api} {label}", scored[label]
    torch.cuda.synchronize()
    return notes, api, compare(defn, got, expected)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", action="append", default=[],
                        help="Only definitions whose name contains this (repeatable).")
    parser.add_argument("--budget", type=float, default=330.0, help="Seconds before skipping the rest.")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    start = time.time()
    defs = [d for d in definitions() if not args.only or any(o in d["name"] for o in args.only)]
    defs.sort(key=lambda d: family(d) == "moe")  # the slowest JIT build goes last
    results = []
    print(f"{'definition':48} {'workload':34} {'output':28} {'max_abs':>10} {'max_rel':>10} {'atol':>7} "
          f"{'rtol':>6} ok   api   (GPU: {torch.cuda.get_device_name()})")
    for defn in defs:
        for spec in picked_specs(defn):
            if time.time() - start > args.budget:
                print(f"{defn['name']:48} SKIPPED (time budget)")
                results.append({"definition": defn["name"], "status": "SKIPPED"})
                continue
            t0 = time.time()
            try:
                notes, api, rows = check(defn, spec)
            except Exception as exc:
                print(f"{defn['name']:48} {spec.get('notes', '')[:34]:34} ERROR {type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:150] if str(exc) else ''}")
                results.append({"definition": defn["name"], "workload": spec.get("notes"), "status": "ERROR",
                                "error": traceback.format_exc()[-2000:]})
                torch.cuda.empty_cache()
                continue
            for r in rows:
                print(f"{defn['name']:48} {notes[:34]:34} {r['output'][:28]:28} {r['max_abs']:10.3g} "
                      f"{r['max_rel']:10.3g} {r['atol']:7.3g} {r['rtol']:6.3g} {'PASS' if r['ok'] else 'FAIL'} "
                      f"{api} ({time.time() - t0:.1f}s)")
            results.append({"definition": defn["name"], "workload": notes, "api": api, "outputs": rows,
                            "status": "PASS" if all(r["ok"] for r in rows) else "FAIL"})
            torch.cuda.empty_cache()
    counts = {s: sum(r["status"] == s for r in results) for s in ("PASS", "FAIL", "ERROR", "SKIPPED")}
    print(f"summary: {counts} in {time.time() - start:.0f}s")
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "check_references.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
