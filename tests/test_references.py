"""Every curated reference against an independent computation, on CPU.

Const axes are the real ones (Llama-3.1-8B heads, DeepSeek-V3 MLA widths, ...) except the MoE,
whose real expert weights are 1.2 GB; it is checked at the same code path with small consts.
Var axes (batch, KV length, tokens) are kept small so the file runs in seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fib_data.blobs import BlobStore
from fib_data.curated import ops
from fib_data.curated.catalog import by_name
from fib_data.curated.workloads import make_workload

DEFS = by_name()


def load(definition: dict) -> dict:
    namespace: dict = {}
    exec(compile(definition["reference"], definition["name"], "exec"), namespace)
    return namespace


def inputs_for(definition: dict, tmp_path, seed: int = 0, **kw) -> tuple[dict, dict]:
    """Inputs built the way the executor does: blobs for structure, N(0,1) for floats, prepare."""
    store = BlobStore(tmp_path / "blobs")
    row = make_workload(definition, kw.pop("axes", {}), store, **kw)
    axes = {a["name"]: a["value"] for a in definition["axes"] if a["type"] == "const"}
    axes.update({a["name"]: a["value"] for a in row["axes"]})
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for spec, how in zip(definition["inputs"], row["inputs"]):
        if how["type"] == "safetensors":
            out[spec["name"]] = store.load(how["sha256"], framework="torch")[how["tensor_key"]]
        elif how["type"] == "scalar":
            out[spec["name"]] = float(how["value"])
        else:
            shape = [axes[d] for d in spec["shape"]]
            out[spec["name"]] = torch.randn(shape, generator=gen).to(getattr(torch, spec["dtype"]))
    prepare = load(definition).get("prepare")
    return (prepare(out, axes) if prepare else out), axes


def call(definition: dict, inputs: dict):
    return load(definition)["run"](*(inputs[i["name"]] for i in definition["inputs"]))


def close(actual, expected, definition: dict, dtype: str = "bfloat16"):
    tol = next(t for t in definition["tolerances"] if t["dtype"] == dtype)
    torch.testing.assert_close(actual.double(), expected.double(), atol=tol["atol"], rtol=tol["rtol"])


# ---- attention: SDPA with an explicit mask over pages gathered token by token ----------------
def sdpa(q, k, v, scale, causal):
    """Independent attention: float64 SDPA with an explicit bottom-right causal mask, plus lse."""
    n_q, heads, _ = q.shape
    n_kv, kv_heads, _ = k.shape
    k = k.double().repeat_interleave(heads // kv_heads, 1).transpose(0, 1)
    v = v.double().repeat_interleave(heads // kv_heads, 1).transpose(0, 1)
    q = q.double().transpose(0, 1)
    mask = torch.ones(n_q, n_kv, dtype=torch.bool)
    if causal:
        mask = torch.arange(n_kv)[None, :] <= torch.arange(n_q)[:, None] + (n_kv - n_q)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    logits = (q @ k.transpose(-1, -2) * scale).masked_fill(~mask, -math.inf)
    return out.transpose(0, 1), torch.logsumexp(logits, -1).T / math.log(2)


def gather_tokens(cache, indptr, indices, last, page_size, b):
    """Token t of sequence b lives in page indices[indptr[b] + t // page_size], slot t % page_size."""
    pages = int(indptr[b + 1] - indptr[b])
    n = (pages - 1) * page_size + (int(last[b]) if last is not None else page_size)
    rows = [cache[int(indices[int(indptr[b]) + t // page_size]), t % page_size] for t in range(n)]
    return torch.stack(rows)


def expected_paged(x, page_size, q_lens, causal):
    """Reference rows for each sequence of a paged batch: (slice of q, output, lse)."""
    last, rows, q0 = x.get("kv_last_page_len"), [], 0
    for b, n in enumerate(q_lens):
        k, v = (gather_tokens(x[c], x["kv_indptr"], x["kv_indices"], last, page_size, b)
                for c in ("k_cache", "v_cache"))
        o, s = sdpa(x["q"][q0:q0 + n], k, v, x["sm_scale"], causal=causal)
        rows.append((slice(q0, q0 + n), o, s))
        q0 += n
    return rows


def check_attention_rows(definition, out, lse, expected):
    for (sl, ref_out, ref_lse) in expected:
        close(out[sl], ref_out, definition)
        close(lse[sl], ref_lse, definition, "float32")


@pytest.mark.parametrize("name", ["gqa_paged_decode_h32_kv8_d128_ps1", "gqa_paged_decode_h32_kv8_d128_ps16",
                                  "gqa_paged_decode_h8_kv1_d128_ps16"])
def test_gqa_paged_decode_matches_sdpa(name, tmp_path):
    d = DEFS[name]
    x, axes = inputs_for(d, tmp_path, kv_lens=[1, 37, 16, 70])
    out, lse = call(d, x)
    expected = expected_paged(x, axes["page_size"], [1] * 4, causal=False)
    assert out.dtype == torch.bfloat16 and lse.dtype == torch.float32
    check_attention_rows(d, out, lse, expected)


def test_gqa_paged_prefill_matches_sdpa_with_causal_mask(tmp_path):
    d = DEFS["gqa_paged_prefill_causal_h32_kv8_d128_ps16"]
    qo, kv = [5, 17, 1], [5, 40, 33]
    x, _ = inputs_for(d, tmp_path, qo_lens=qo, kv_lens=kv)
    out, lse = call(d, x)
    check_attention_rows(d, out, lse, expected_paged(x, 16, qo, causal=True))


def test_gqa_ragged_prefill_matches_sdpa_with_causal_mask(tmp_path):
    d = DEFS["gqa_ragged_prefill_causal_h32_kv8_d128"]
    qo, kv = [6, 1, 9], [6, 4, 20]
    x, _ = inputs_for(d, tmp_path, qo_lens=qo, kv_lens=kv)
    out, lse = call(d, x)
    qp, kp = np.cumsum([0] + qo), np.cumsum([0] + kv)
    expected = []
    for b in range(3):
        o, s = sdpa(x["q"][qp[b]:qp[b + 1]], x["k"][kp[b]:kp[b + 1]], x["v"][kp[b]:kp[b + 1]],
                    x["sm_scale"], causal=True)
        expected.append((slice(qp[b], qp[b + 1]), o, s))
    check_attention_rows(d, out, lse, expected)


def test_mla_paged_decode_matches_sdpa_on_latent_cache(tmp_path):
    d = DEFS["mla_paged_decode_h16_ckv512_kpe64_ps1"]
    assert abs(float(d["inputs"][-1]["description"].split("default ")[1].rstrip(")")) - 0.135234) < 1e-5
    x, _ = inputs_for(d, tmp_path, kv_lens=[3, 50])
    out, lse = call(d, x)
    expected = []
    for b in range(2):
        ckv = gather_tokens(x["ckv_cache"][:, :, None], x["kv_indptr"], x["kv_indices"], None, 1, b)
        kpe = gather_tokens(x["kpe_cache"][:, :, None], x["kv_indptr"], x["kv_indices"], None, 1, b)
        q = torch.cat([x["q_nope"][b:b + 1], x["q_pe"][b:b + 1]], -1)
        o, s = sdpa(q, torch.cat([ckv, kpe], -1), ckv, x["sm_scale"], causal=False)
        expected.append((slice(b, b + 1), o, s))
    check_attention_rows(d, out, lse, expected)


def test_attention_reference_fails_on_a_wrong_answer(tmp_path):
    """The comparison above is not vacuous: a wrong scale is caught."""
    d = DEFS["gqa_paged_decode_h32_kv8_d128_ps16"]
    x, _ = inputs_for(d, tmp_path, kv_lens=[40])
    out, _ = call(d, dict(x, sm_scale=x["sm_scale"] * 1.5))
    [(_, o, _)] = expected_paged(x, 16, [1], causal=False)
    with pytest.raises(AssertionError):
        close(out, o, d)


# ---- GEMMs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gemm_n4096_k4096", "gemm_n1280_k8192"])
def test_gemm_matches_float64_matmul(name, tmp_path):
    d = DEFS[name]
    x, _ = inputs_for(d, tmp_path, axes={"M": 5})
    c = call(d, x)
    assert c.dtype == torch.bfloat16 and c.shape == (5, x["B"].shape[0])
    close(c, x["A"].double() @ x["B"].double().T, d)


def test_fp8_block_gemm_matches_blockwise_dequantised_matmul(tmp_path):
    d = DEFS["gemm_fp8_block_scale_n1536_k7168"]
    x, _ = inputs_for(d, tmp_path, axes={"M": 3})
    assert (x["A_scale"] > 0).all() and (x["B_scale"] > 0).all()
    c = call(d, x)
    a, b = x["A"].double(), x["B"].double()
    expected = torch.zeros(3, 1536, dtype=torch.float64)
    for kb in range(7168 // 128):
        ks = slice(kb * 128, (kb + 1) * 128)
        partial = a[:, ks] @ b[:, ks].T * x["A_scale"][:, kb, None].double()
        expected += partial * x["B_scale"][:, kb].double().repeat_interleave(128)[None, :]
    close(c, expected, d)


# ---- norms and activation ---------------------------------------------------------------------
@pytest.mark.parametrize("name,eps", [("rmsnorm_h4096", 1e-5), ("rmsnorm_h7168", 1e-6)])
def test_rmsnorm_matches_float64_formula(name, eps, tmp_path):
    d = DEFS[name]
    x, _ = inputs_for(d, tmp_path, axes={"batch_size": 6})
    h = x["hidden_states"].double()
    expected = h / torch.sqrt((h * h).mean(-1, keepdim=True) + eps) * x["weight"].double()
    close(call(d, x), expected, d)


def test_fused_add_rmsnorm_matches_float64_formula(tmp_path):
    d = DEFS["fused_add_rmsnorm_h4096"]
    x, _ = inputs_for(d, tmp_path, axes={"batch_size": 6})
    h = x["hidden_states"].double() + x["residual"].double()
    expected = h / torch.sqrt((h * h).mean(-1, keepdim=True) + 1e-5) * x["weight"].double()
    close(call(d, x), expected, d)


@pytest.mark.parametrize("name", ["silu_and_mul_h14336", "silu_and_mul_h3584"])
def test_silu_and_mul_matches_float64_formula(name, tmp_path):
    d = DEFS[name]
    x, _ = inputs_for(d, tmp_path, axes={"batch_size": 4})
    g, u = x["x"].double().chunk(2, dim=-1)
    close(call(d, x), g / (1 + torch.exp(-g)) * u, d)


# ---- RoPE ------------------------------------------------------------------------------------
def llama31_freqs(dim: int) -> torch.Tensor:
    """flashinfer's formulation of Llama-3.1 scaling: a clamped linear blend, in float64."""
    freq = 500000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    smooth = (8192 * freq / (2 * math.pi) - 1.0) / (4.0 - 1.0)
    smooth = smooth.clamp(0, 1)
    return (1 - smooth) * freq / 8.0 + smooth * freq


def rotate_complex(x: torch.Tensor, pos: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    z = torch.complex(x[..., :half].double(), x[..., half:].double())
    z = z * torch.polar(torch.ones_like(freqs), pos.double()[:, None] * freqs)[:, None, :]
    return torch.cat([z.real, z.imag], -1)


def test_rope_matches_complex_multiplication(tmp_path):
    d = DEFS["rope_llama31_h32_kv8_d128"]
    x, _ = inputs_for(d, tmp_path, qo_lens=[4, 1], kv_lens=[9000, 20000])
    assert x["pos_ids"].tolist() == [8996, 8997, 8998, 8999, 19999]
    q, k = call(d, x)
    freqs = llama31_freqs(128)
    close(q, rotate_complex(x["q"], x["pos_ids"], freqs), d)
    close(k, rotate_complex(x["k"], x["pos_ids"], freqs), d)
    unscaled = 500000.0 ** (-torch.arange(0, 128, 2, dtype=torch.float64) / 128)
    with pytest.raises(AssertionError):  # the llama3 scaling is really in
        close(q, rotate_complex(x["q"], x["pos_ids"], unscaled), d)


# ---- sampling --------------------------------------------------------------------------------
def kept_distribution(p: np.ndarray, k: int, top_p: float) -> np.ndarray:
    """Independent filter in float64: keep the k largest, renormalise, then the nucleus."""
    order = np.argsort(-p, kind="stable")
    keep = np.zeros_like(p)
    keep[order[:k] if 0 < k < len(p) else order] = 1
    q = p * keep / (p * keep).sum()
    sq = q[order]
    n = int(np.searchsorted(np.cumsum(sq), top_p) + 1)
    out = np.zeros_like(p)
    out[order[:n]] = sq[:n]
    return out / out.sum()


@pytest.mark.parametrize("top_k,top_p", [(10, 0.7), (50, 1.0), (0, 0.5)])
def test_sampling_distribution_matches_filtered_probabilities(top_k, top_p):
    d = ops.top_k_top_p_sampling(40)
    gen = torch.Generator().manual_seed(1)
    row = torch.softmax(torch.randn(40, generator=gen) * 1.5, -1)
    draws = 40000
    probs = row.expand(draws, 40).contiguous()
    torch.manual_seed(7)
    samples = call(d, {"probs": probs, "top_k": torch.full((draws,), top_k, dtype=torch.int32),
                       "top_p": torch.full((draws,), top_p)})
    assert samples.dtype == torch.int64
    expected = kept_distribution(row.double().numpy(), top_k, top_p)
    counts = np.bincount(samples.numpy(), minlength=40)
    assert counts[expected == 0].sum() == 0, "sampled outside the top-k / top-p set"
    tvd = 0.5 * np.abs(counts / draws - expected).sum()
    assert tvd < 0.02, tvd
    nz = expected > 0
    chi2 = (((counts - draws * expected) ** 2)[nz] / (draws * expected[nz])).sum()
    dof = nz.sum() - 1
    assert chi2 < dof + 5 * math.sqrt(2 * dof) + 10, (chi2, dof)


def test_sampling_full_vocab_stays_in_the_kept_set(tmp_path):
    d = DEFS["top_k_top_p_sampling_from_probs_v128256"]
    x, _ = inputs_for(d, tmp_path, axes={"batch_size": 4})
    assert torch.allclose(x["probs"].sum(-1), torch.ones(4), atol=1e-4)
    torch.manual_seed(3)
    for _ in range(5):
        samples = call(d, x)
        for b in range(4):
            kept = kept_distribution(x["probs"][b].double().numpy(), int(x["top_k"][b]), float(x["top_p"][b]))
            assert kept[int(samples[b])] > 0


# ---- MoE -------------------------------------------------------------------------------------
def moe_per_token(x, logits, w13, w2, top_k):
    """One token at a time in float64, without any intermediate rounding."""
    inter = w2.shape[-1]
    out = torch.zeros(x.shape, dtype=torch.float64)
    for t in range(x.shape[0]):
        p = torch.softmax(logits[t].double(), -1)
        w, e = p.topk(top_k)
        w = w / w.sum()
        for weight, expert in zip(w, e):
            h = w13[expert].double() @ x[t].double()
            act = F.silu(h[:inter]) * h[inter:]
            out[t] += weight * (w2[expert].double() @ act)
    return out


def test_moe_matches_per_token_loop(tmp_path):
    d = ops.moe(num_experts=16, top_k=4, hidden_size=256, intermediate_size=96)
    x, _ = inputs_for(d, tmp_path, axes={"seq_len": 9})
    out = call(d, x)
    close(out, moe_per_token(x["hidden_states"], x["routing_logits"], x["gate_up_weights"],
                             x["down_weights"], 4), d)


def test_moe_real_definition_is_qwen3_shaped():
    d = DEFS["moe_softmax_topk8_renorm_e128_h2048_i768"]
    consts = {a["name"]: a["value"] for a in d["axes"] if a["type"] == "const"}
    assert consts == {"num_experts": 128, "hidden_size": 2048, "intermediate_size": 768,
                      "gemm1_out_size": 1536}
    assert "TOP_K = 8" in d["reference"]


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(n for n in DEFS if not n.startswith(("moe", "top_k"))))
def test_reference_gives_the_same_answer_on_gpu(name, tmp_path):
    d = DEFS[name]
    spec = {"axes": {}, "kv_lens": [3, 40]} if "kv_indptr" in {i["name"] for i in d["inputs"]} else None
    if spec is None:
        (axis,) = [a["name"] for a in d["axes"] if a["type"] == "var"] or ["num_tokens"]
        spec = {"axes": {axis: 5}} if axis != "num_tokens" else {"axes": {}, "kv_lens": [7, 9000]}
    x, _ = inputs_for(d, tmp_path, **spec)
    on_cpu = call(d, x)
    on_gpu = call(d, {k: v.cuda() if torch.is_tensor(v) else v for k, v in x.items()})
    for a, b in zip(on_cpu if isinstance(on_cpu, tuple) else (on_cpu,),
                    on_gpu if isinstance(on_gpu, tuple) else (on_gpu,)):
        close(b.cpu(), a, d, dtype=str(a.dtype).removeprefix("torch."))
