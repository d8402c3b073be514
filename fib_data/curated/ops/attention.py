"""Attention definitions: GQA paged decode/prefill, GQA ragged prefill, MLA paged decode.

Signatures follow flashinfer-trace: q, caches, index arrays, then ``sm_scale``; outputs are
``output`` and ``lse`` (base-2 log-sum-exp, flashinfer's convention). Page size > 1 adds a
``kv_last_page_len`` input after ``kv_indices`` (flashinfer's ``last_page_len``), which page
size 1 does not need (upstream's ``_ps1`` definitions have no such input).
"""

from __future__ import annotations

import math

from .common import (BF16_ATTENTION, LSE_FP32, const, definition, model_tags, reference, scalar,
                     tensor, var)


def _gqa_axes(num_qo_heads: int, num_kv_heads: int, head_dim: int) -> list[dict]:
    return [const("num_qo_heads", num_qo_heads, "Query heads on one tensor-parallel rank."),
            const("num_kv_heads", num_kv_heads, "Key/value heads on one rank."),
            const("head_dim", head_dim, "Head dimension.")]


def _paged_axes(page_size: int) -> list[dict]:
    return [const("page_size", page_size, "Tokens per KV-cache page."),
            var("num_pages", "Pages in the KV-cache pool (more than the batch uses)."),
            var("len_indptr", "batch_size + 1."),
            var("num_kv_indices", "Pages used by the batch, kv_indptr[-1].")]


def _paged_cache(page_size: int, qo_indptr: bool = False) -> list[dict]:
    """k_cache, v_cache, [qo_indptr,] kv_indptr, kv_indices, [kv_last_page_len] (upstream order)."""
    shape = ["num_pages", "page_size", "num_kv_heads", "head_dim"]
    index = [tensor("qo_indptr", ["len_indptr"], "int32", "Query offsets of each sequence.")] if qo_indptr else []
    index += [tensor("kv_indptr", ["len_indptr"], "int32", "Page offsets of each sequence in kv_indices."),
             tensor("kv_indices", ["num_kv_indices"], "int32", "Page ids of each sequence, in order.")]
    if page_size > 1:
        index.append(tensor("kv_last_page_len", ["batch_size"], "int32",
                            "Tokens in each sequence's last page (1..page_size)."))
    return [tensor("k_cache", shape, "bfloat16", "Paged key cache (NHD layout)."),
            tensor("v_cache", shape, "bfloat16", "Paged value cache (NHD layout)."), *index]


def _sm_scale(head_dim: int) -> dict:
    return scalar("sm_scale", "float32", "Softmax scale 1/sqrt(head_dim)", 1.0 / math.sqrt(head_dim))


def _outputs(rows: str, heads: str = "num_qo_heads", dim: str = "head_dim") -> list[dict]:
    return [tensor("output", [rows, heads, dim], "bfloat16", "Attention output."),
            tensor("lse", [rows, heads], "float32", "Base-2 log-sum-exp of the scaled logits.")]


def _facts(model: str | None, facts: str) -> str:
    return f" Shapes from {model}: {facts}." if model else ""


def gqa_paged_decode(num_qo_heads: int, num_kv_heads: int, head_dim: int, page_size: int, *,
                     model: str | None = None, tp: int = 1, facts: str = "",
                     tags: list[str] | None = None) -> dict:
    name = f"gqa_paged_decode_h{num_qo_heads}_kv{num_kv_heads}_d{head_dim}_ps{page_size}"
    files = ("attention_common.py", "gqa_paged_decode_ps1.py" if page_size == 1 else "gqa_paged_decode.py")
    constraints = ["len_indptr == batch_size + 1", "num_kv_indices == kv_indptr[-1].item()"]
    if page_size > 1:
        constraints.append("((kv_last_page_len >= 1) & (kv_last_page_len <= page_size)).all()")
    return definition(
        name=name, op_type="gqa_paged", tags=tags or model_tags(model, "decode", tp),
        description=(f"Batch grouped-query attention decode (one query token per sequence) over a "
                     f"paged KV cache, page size {page_size}, as flashinfer's "
                     f"BatchDecodeWithPagedKVCacheWrapper (NHD).{_facts(model, facts)}"),
        axes=[var("batch_size", "Sequences in the batch."), *_gqa_axes(num_qo_heads, num_kv_heads, head_dim),
              *_paged_axes(page_size)],
        inputs=[tensor("q", ["batch_size", "num_qo_heads", "head_dim"], "bfloat16", "Query, one token per sequence."),
                *_paged_cache(page_size), _sm_scale(head_dim)],
        outputs=_outputs("batch_size"),
        reference=reference(*files), constraints=constraints, tolerances=[BF16_ATTENTION, LSE_FP32])


def gqa_paged_prefill(num_qo_heads: int, num_kv_heads: int, head_dim: int, page_size: int, *,
                      model: str | None = None, tp: int = 1, facts: str = "",
                      tags: list[str] | None = None) -> dict:
    name = f"gqa_paged_prefill_causal_h{num_qo_heads}_kv{num_kv_heads}_d{head_dim}_ps{page_size}"
    if page_size == 1:
        raise ValueError("paged prefill is curated for page size > 1 (it takes kv_last_page_len)")
    return definition(
        name=name, op_type="gqa_paged", tags=tags or model_tags(model, "prefill", tp),
        description=(f"Causal batch prefill (chunked prefill: new query tokens after a cached "
                     f"prefix) against a paged KV cache holding prefix and chunk, page size "
                     f"{page_size}, as flashinfer's BatchPrefillWithPagedKVCacheWrapper "
                     f"(causal=True, NHD).{_facts(model, facts)}"),
        axes=[var("total_q", "Query tokens in the batch."), var("batch_size", "Sequences in the batch."),
              *_gqa_axes(num_qo_heads, num_kv_heads, head_dim), *_paged_axes(page_size)],
        inputs=[tensor("q", ["total_q", "num_qo_heads", "head_dim"], "bfloat16", "Ragged queries."),
                *_paged_cache(page_size, qo_indptr=True), _sm_scale(head_dim)],
        outputs=_outputs("total_q"),
        reference=reference("attention_common.py", "gqa_paged_prefill.py"),
        constraints=["len_indptr == batch_size + 1", "total_q == qo_indptr[-1].item()",
                     "num_kv_indices == kv_indptr[-1].item()"],
        tolerances=[BF16_ATTENTION, LSE_FP32])


def gqa_ragged_prefill(num_qo_heads: int, num_kv_heads: int, head_dim: int, *,
                       model: str | None = None, tp: int = 1, facts: str = "",
                       tags: list[str] | None = None) -> dict:
    return definition(
        name=f"gqa_ragged_prefill_causal_h{num_qo_heads}_kv{num_kv_heads}_d{head_dim}",
        op_type="gqa_ragged", tags=tags or model_tags(model, "prefill", tp),
        description=(f"Causal batch prefill on ragged q/k/v (no paging), as flashinfer's "
                     f"BatchPrefillWithRaggedKVCacheWrapper (causal=True).{_facts(model, facts)}"),
        axes=[*_gqa_axes(num_qo_heads, num_kv_heads, head_dim),
              var("len_indptr", "batch_size + 1."), var("total_q", "Query tokens in the batch."),
              var("total_kv", "Key/value tokens in the batch.")],
        inputs=[tensor("q", ["total_q", "num_qo_heads", "head_dim"], "bfloat16", "Ragged queries."),
                tensor("k", ["total_kv", "num_kv_heads", "head_dim"], "bfloat16", "Ragged keys."),
                tensor("v", ["total_kv", "num_kv_heads", "head_dim"], "bfloat16", "Ragged values."),
                tensor("qo_indptr", ["len_indptr"], "int32", "Query offsets of each sequence."),
                tensor("kv_indptr", ["len_indptr"], "int32", "Key/value offsets of each sequence."),
                _sm_scale(head_dim)],
        outputs=_outputs("total_q"),
        reference=reference("attention_common.py", "gqa_ragged_prefill.py"),
        constraints=["total_q == qo_indptr[-1].item()", "total_kv == kv_indptr[-1].item()"],
        tolerances=[BF16_ATTENTION, LSE_FP32])


def mla_paged_decode(num_heads: int, head_dim_ckv: int, head_dim_kpe: int, page_size: int,
                     sm_scale: float, *, model: str | None = None, tp: int = 1, facts: str = "",
                     tags: list[str] | None = None) -> dict:
    if page_size != 1:
        raise ValueError("MLA decode is curated for page size 1 (flashinfer-trace's signature has "
                         "no last-page lengths)")
    return definition(
        name=f"mla_paged_decode_h{num_heads}_ckv{head_dim_ckv}_kpe{head_dim_kpe}_ps{page_size}",
        op_type="mla_paged", tags=tags or model_tags(model, "decode", tp),
        description=(f"Multi-head latent attention decode in the weight-absorbed form over a paged "
                     f"latent cache (compressed kv + rope key), as flashinfer's "
                     f"BatchMLAPagedAttentionWrapper.{_facts(model, facts)}"),
        axes=[var("batch_size", "Sequences in the batch."),
              const("num_qo_heads", num_heads, "Query heads on one tensor-parallel rank."),
              const("head_dim_ckv", head_dim_ckv, "Compressed kv width (kv_lora_rank)."),
              const("head_dim_kpe", head_dim_kpe, "Rope part of the key (qk_rope_head_dim)."),
              *_paged_axes(page_size)],
        inputs=[tensor("q_nope", ["batch_size", "num_qo_heads", "head_dim_ckv"], "bfloat16",
                       "Query already multiplied by the absorbed W_UK."),
                tensor("q_pe", ["batch_size", "num_qo_heads", "head_dim_kpe"], "bfloat16", "Rope part of the query."),
                tensor("ckv_cache", ["num_pages", "page_size", "head_dim_ckv"], "bfloat16", "Paged compressed kv."),
                tensor("kpe_cache", ["num_pages", "page_size", "head_dim_kpe"], "bfloat16", "Paged rope keys."),
                tensor("kv_indptr", ["len_indptr"], "int32", "Page offsets of each sequence in kv_indices."),
                tensor("kv_indices", ["num_kv_indices"], "int32", "Page ids of each sequence, in order."),
                scalar("sm_scale", "float32", "Softmax scale", sm_scale)],
        outputs=_outputs("batch_size", dim="head_dim_ckv"),
        reference=reference("attention_common.py", "mla_paged_decode.py"),
        constraints=["len_indptr == batch_size + 1", "num_kv_indices == kv_indptr[-1].item()"],
        tolerances=[BF16_ATTENTION, LSE_FP32])
