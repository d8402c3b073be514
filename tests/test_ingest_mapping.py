"""Batch -> kernels for each shipped model, even splits, measured axes, and bucketing arithmetic."""

import polars as pl

from fib_data.ingest.batches import FRAME_SCHEMA, Batch
from fib_data.ingest.bucketing import bucket_frame
from fib_data.ingest.mapping import ModelMap, split_lengths
from fib_data.models import load_model_config


def names(uses):
    return {u.definition["name"]: u for u in uses}


def test_llama_decode_step_runs_every_layer_kernel():
    mm = ModelMap(load_model_config("llama-3.1-8b"), tp=1, page_size=16)
    uses = names(mm.uses(Batch("decode", 4, 4, 1002, measured=("batch_size", "q_tokens"))))
    assert set(uses) == {
        "gqa_paged_decode_h32_kv8_d128_ps16", "gemm_n6144_k4096", "gemm_n4096_k4096", "gemm_n28672_k4096",
        "gemm_n4096_k14336", "gemm_n128256_k4096", "rmsnorm_h4096", "fused_add_rmsnorm_h4096",
        "silu_and_mul_h14336", "rope_llama31_h32_kv8_d128", "top_k_top_p_sampling_from_probs_v128256"}
    attn = uses["gqa_paged_decode_h32_kv8_d128_ps16"]
    assert attn.kv_lens == (251, 251, 250, 250)  # 1002 split evenly, remainder first
    assert set(attn.measured) == {"batch_size", "len_indptr"}  # KV split and pages are modelled
    assert uses["gemm_n6144_k4096"].axes == (("M", 4),)


def test_prefill_split_keeps_cached_prefix_per_sequence():
    batch = Batch("prefill", 2, 301, 401)
    assert split_lengths(batch) == ([151, 150], [201, 200])
    mm = ModelMap(load_model_config("llama-3.1-8b"), page_size=16)
    attn = names(mm.uses(batch))["gqa_paged_prefill_causal_h32_kv8_d128_ps16"]
    assert (attn.qo_lens, attn.kv_lens) == ((151, 150), (201, 200))
    assert "total_q" in attn.measured and "num_kv_indices" not in attn.measured


def test_mixed_chunk_decode_rows_count_in_dense_m_only():
    mm = ModelMap(load_model_config("llama-3.1-8b"), page_size=16)
    uses = names(mm.uses(Batch("prefill", 1, 100, 128, extra_tokens=3)))
    assert uses["gemm_n6144_k4096"].axes == (("M", 103),)
    assert uses["gqa_paged_prefill_causal_h32_kv8_d128_ps16"].qo_lens == (100,)
    assert any("mixed-chunk" in n for n in mm.unmapped)


def test_moe_and_mla_models():
    qwen = names(ModelMap(load_model_config("qwen3-30b-a3b"), page_size=16).uses(Batch("decode", 2, 2, 100)))
    assert "moe_softmax_topk8_renorm_e128_h2048_i768" in qwen
    assert "silu_and_mul_h6144" not in qwen  # every Qwen3-MoE layer is sparse
    mm = ModelMap(load_model_config("deepseek-v3"), tp=8, page_size=1)
    ds = names(mm.uses(Batch("decode", 2, 2, 100)))
    assert "mla_paged_decode_h16_ckv512_kpe64_ps1" in ds and "gemm_fp8_block_scale_n1536_k7168" in ds
    assert any("MoE routing" in n for n in mm.unmapped)
    assert names(mm.uses(Batch("prefill", 1, 10, 10))).keys().isdisjoint({"mla_paged_decode_h16_ckv512_kpe64_ps1"})
    assert any("MLA prefill" in n for n in mm.unmapped)


def frame(*rows):
    return pl.DataFrame([dict(zip(["stage", "batch_size", "q_tokens", "kv_tokens", "extra_tokens", "weight"], r),
                              observed_at=None, where="x:1") for r in rows], schema=FRAME_SCHEMA)


def test_bucketing_by_hand():
    f = frame(("decode", 5, 5, 1000, 0, 40), ("decode", 7, 7, 1300, 0, 40), ("prefill", 3, 300, 330, 0, 1))
    pow2 = sorted(bucket_frame(f, "pow2", 16).drop("observed_at", "where").iter_rows())
    # decode: 5 and 7 -> 8 sequences; 1000/5 = 200 -> 256 and ceil(1300/7) = 186 -> 256 per sequence: merged
    # prefill: 3 -> 4 sequences, 100 -> 128 query and ceil(330/3) = 110 -> 128 KV tokens each
    assert pow2 == [("decode", 8, 8, 2048, 0, 80), ("prefill", 4, 512, 512, 0, 1)]
    page = sorted(bucket_frame(f, "page", 16).drop("observed_at", "where").iter_rows())
    # per-sequence KV rounded up to pages of 16: 200 -> 208, 186 -> 192, 110 -> 112; the rest exact
    assert page == [("decode", 5, 5, 1040, 0, 40), ("decode", 7, 7, 1344, 0, 40), ("prefill", 3, 300, 336, 0, 1)]
    assert bucket_frame(f, "exact", 16).equals(f)
