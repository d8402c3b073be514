"""GQA decode over a paged KV cache in Triton.

One program per (sequence, kv head): the GROUP query heads that share the kv head are one
[GROUP_PAD, D] tile, so each K/V row is loaded once for the whole group. Keys are visited in
blocks of BLOCK_N tokens (token t of a sequence sits in page kv_indices[start + t // page_size],
slot t % page_size) with an online base-2 softmax in fp32. LSE is base 2, flashinfer's convention.
"""

import os

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634
#: Under the CPU interpreter tl.dot on bf16 gives wrong results, so operands are widened to
#: fp32 first (exact for bf16); compiled kernels keep bf16 tensor-core dots.
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


@triton.jit
def _decode_kernel(q_ptr, k_ptr, v_ptr, indptr_ptr, indices_ptr, last_ptr, out_ptr, lse_ptr,
                   qk_scale, page_size, kv_heads,
                   HAS_LAST: tl.constexpr, GROUP: tl.constexpr, GROUP_PAD: tl.constexpr,
                   D: tl.constexpr, BLOCK_N: tl.constexpr, UPCAST: tl.constexpr):
    b = tl.program_id(0)
    kvh = tl.program_id(1)
    start = tl.load(indptr_ptr + b)
    end = tl.load(indptr_ptr + b + 1)
    n_pages = end - start
    if HAS_LAST:
        n_kv = tl.where(n_pages > 0, (n_pages - 1) * page_size + tl.load(last_ptr + b), 0)
    else:
        n_kv = n_pages
    g = tl.arange(0, GROUP_PAD)
    d = tl.arange(0, D)
    heads = kv_heads * GROUP
    q_rows = b.to(tl.int64) * heads + kvh * GROUP + g
    q = tl.load(q_ptr + q_rows[:, None] * D + d[None, :], mask=g[:, None] < GROUP, other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
    m = tl.full((GROUP_PAD,), -float("inf"), tl.float32)
    l = tl.zeros((GROUP_PAD,), tl.float32)
    acc = tl.zeros((GROUP_PAD, D), tl.float32)
    for t0 in range(0, n_kv, BLOCK_N):
        t = t0 + tl.arange(0, BLOCK_N)
        valid = t < n_kv
        page = tl.load(indices_ptr + start + t // page_size, mask=valid, other=0).to(tl.int64)
        row = (page * page_size + t % page_size) * kv_heads + kvh
        k = tl.load(k_ptr + row[:, None] * D + d[None, :], mask=valid[:, None], other=0.0)
        if UPCAST:
            k = k.to(tl.float32)
        s = tl.dot(q, tl.trans(k)) * qk_scale
        s = tl.where(valid[None, :], s, -float("inf"))
        m_new = tl.maximum(m, tl.max(s, axis=1))
        alpha = tl.exp2(m - m_new)
        p = tl.exp2(s - m_new[:, None])
        l = l * alpha + tl.sum(p, axis=1)
        v = tl.load(v_ptr + row[:, None] * D + d[None, :], mask=valid[:, None], other=0.0)
        # P is rounded to V's dtype for the tensor-core P @ V, as flashinfer does.
        p = p.to(v.dtype)
        if UPCAST:
            p, v = p.to(tl.float32), v.to(tl.float32)
        acc = acc * alpha[:, None] + tl.dot(p, v)
        m = m_new
    out = acc / tl.where(l > 0, l, 1.0)[:, None]
    tl.store(out_ptr + q_rows[:, None] * D + d[None, :], out.to(out_ptr.dtype.element_ty),
             mask=g[:, None] < GROUP)
    tl.store(lse_ptr + q_rows, tl.where(l > 0, m + tl.log2(l), -float("inf")), mask=g < GROUP)


def _launch(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse):
    batch, heads, head_dim = q.shape
    page_size, kv_heads = k_cache.shape[1], k_cache.shape[2]
    if batch == 0:
        return
    group = heads // kv_heads
    _decode_kernel[(batch, kv_heads)](
        q.contiguous(), k_cache, v_cache, kv_indptr, kv_indices,
        kv_last_page_len if kv_last_page_len is not None else kv_indptr, output, lse,
        float(sm_scale) * LOG2E, page_size, kv_heads,
        HAS_LAST=kv_last_page_len is not None, GROUP=group,
        GROUP_PAD=max(16, triton.next_power_of_2(group)), D=head_dim, BLOCK_N=64,
        UPCAST=INTERPRET, num_warps=4)


@torch.no_grad()
def gqa_paged_decode_ps1(q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale, output, lse):
    _launch(q, k_cache, v_cache, kv_indptr, kv_indices, None, sm_scale, output, lse)


@torch.no_grad()
def gqa_paged_decode(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale,
                     output, lse):
    _launch(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, sm_scale, output, lse)


