"""From a batch to the kernels it runs: definitions (from the curated factories) and var axes.

For a model config and tensor-parallel degree, one forward step of ``batch`` runs, per layer:
attention (GQA paged decode or prefill at the given page size; MLA paged decode), the GEMMs of
each projection (M = tokens in the step; the LM head sees one row per sequence), RMSNorm and
fused add+RMSNorm, SiLU-and-mul, Llama-3.1 RoPE, a MoE block (routing drawn by the executor:
a uniform routing model), and top-k/top-p sampling over the vocabulary. Kernels the factories
do not cover (MLA prefill, DeepSeek's grouped sigmoid routing, non-Llama RoPE) are listed in
``unmapped`` so the report can say so.

Per-sequence lengths: when the source gives only totals they are split evenly (the remainder
goes to the first sequences; cached prefix tokens likewise), and axes that depend on the split
are marked synthesized. ``measured`` names the axes fixed by what the source measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..curated import ops
from ..models import ModelConfig
from .batches import Batch

#: Batch field each var axis follows (axes not listed depend on the per-sequence split).
_AXIS_SOURCE = {
    "batch_size": "batch_size", "len_indptr": "batch_size", "total_q": "q_tokens",
    "num_tokens": "q_tokens", "seq_len": "q_tokens", "total_kv": "kv_tokens",
}


@dataclass(frozen=True)
class Use:
    """One kernel call shape: a definition row and the make_workload arguments."""
    definition: dict
    axes: tuple[tuple[str, int], ...]
    kv_lens: tuple[int, ...] | None = None
    qo_lens: tuple[int, ...] | None = None
    measured: tuple[str, ...] = ()
    #: Real structured inputs seen in serving (name -> int array); they replace synthesized ones.
    tensors: dict | None = field(default=None, compare=False, hash=False)

    @property
    def key(self) -> tuple:
        return (self.definition["name"], self.axes, self.kv_lens, self.qo_lens)


@dataclass
class ModelMap:
    model: ModelConfig
    tp: int = 1
    page_size: int = 1
    unmapped: set[str] = field(default_factory=set)
    _defs: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        self.heads, self.kv_heads = self.model.heads_per_rank(self.tp)

    def uses(self, batch: Batch) -> list[Use]:
        qo, kv = split_lengths(batch)
        out = self._attention(batch, qo, kv)
        tokens = batch.q_tokens + batch.extra_tokens
        measured_tokens = "q_tokens" in batch.measured
        for definition in self._token_ops():
            axis = next(a["name"] for a in definition["axes"] if a["type"] == "var")
            out.append(Use(definition, ((axis, tokens),), measured=(axis,) if measured_tokens else ()))
        sequences = batch.batch_size + batch.extra_tokens
        for definition in self._sequence_ops():
            axis = next(a["name"] for a in definition["axes"] if a["type"] == "var")
            out.append(Use(definition, ((axis, sequences),),
                           measured=(axis,) if "batch_size" in batch.measured else ()))
        rope = self._rope()
        if rope is not None:
            out.append(Use(rope, (), kv_lens=tuple(kv), qo_lens=tuple(qo),
                           measured=("num_tokens",) if measured_tokens and not batch.extra_tokens else ()))
        return out

    # ---- attention -----------------------------------------------------------------------
    def _attention(self, batch: Batch, qo: list[int], kv: list[int]) -> list[Use]:
        m, ps = self.model, self.page_size
        if m.attention_kind == "mla":
            if batch.stage == "prefill":
                self.unmapped.add("MLA prefill attention (no curated definition)")
                return []
            if ps != 1:
                self.unmapped.add(f"MLA decode at page size {ps} (curated for page size 1 only)")
                return []
            d = self._def(ops.mla_paged_decode, self.heads, m.kv_lora_rank, m.qk_rope_head_dim, 1,
                          m.mla_softmax_scale())
            return [self._attn_use(d, batch, kv, None)]
        if batch.stage == "decode":
            d = self._def(ops.gqa_paged_decode, self.heads, self.kv_heads, m.head_dim, ps)
            return [self._attn_use(d, batch, kv, None)]
        if ps == 1:
            # Paged prefill is curated for page size > 1 only; at page size 1 the same step is
            # a ragged prefill over the sequences' whole KV.
            self.unmapped.add("paged prefill at page size 1 (mapped to ragged prefill instead)")
            d = self._def(ops.gqa_ragged_prefill, self.heads, self.kv_heads, m.head_dim)
        else:
            d = self._def(ops.gqa_paged_prefill, self.heads, self.kv_heads, m.head_dim, ps)
        if batch.extra_tokens:
            self.unmapped.add("decode rows of mixed-chunk prefill steps in attention (their KV "
                              "lengths are not logged; they count in the dense ops' M only)")
        return [self._attn_use(d, batch, kv, qo)]

    def _attn_use(self, d: dict, batch: Batch, kv, qo) -> Use:
        var = [a["name"] for a in d["axes"] if a["type"] == "var"]
        measured = [a for a in var if _AXIS_SOURCE.get(a) in batch.measured]
        # At page size 1 the page count is the KV total; with bigger pages it depends on the split.
        if "num_kv_indices" in var and "kv_tokens" in batch.measured and self.page_size == 1:
            measured.append("num_kv_indices")
        return Use(d, (), kv_lens=tuple(kv), qo_lens=tuple(qo) if qo is not None else None,
                   measured=tuple(measured))

    # ---- dense ops -----------------------------------------------------------------------
    def _token_ops(self) -> list[dict]:
        """Definitions whose one var axis is the number of tokens in the step."""
        m, tp, h, kv, d = self.model, self.tp, self.heads, self.kv_heads, self.model.head_dim
        out = [self._def(ops.rmsnorm, m.hidden_size, m.rms_norm_eps),
               self._def(ops.fused_add_rmsnorm, m.hidden_size, m.rms_norm_eps)]
        if m.attention_kind == "mla":
            out += self._mla_projections()
        else:
            out += [self._def(ops.gemm, (h + 2 * kv) * d, m.hidden_size),
                    self._def(ops.gemm, m.hidden_size, h * d)]
        dense_mlp = not m.is_moe or int(m.raw.get("first_k_dense_replace") or 0) > 0
        if dense_mlp:
            inter = _split(m.intermediate_size, tp, "intermediate_size")
            out += [self._def(ops.gemm, 2 * inter, m.hidden_size), self._def(ops.gemm, m.hidden_size, inter),
                    self._def(ops.silu_and_mul, inter)]
        if m.is_moe:
            if m.model_type.startswith("qwen") and m.norm_topk_prob:
                out.append(self._def(ops.moe, m.num_experts, m.num_experts_per_tok, m.hidden_size,
                                     _split(m.moe_intermediate_size, tp, "moe_intermediate_size")))
            else:
                self.unmapped.add(f"MoE routing of {m.model_type} (the curated MoE is softmax top-k)")
        return out

    def _mla_projections(self) -> list[dict]:
        m, h = self.model, self.heads
        shapes = [(m.q_lora_rank, m.hidden_size), (h * (m.qk_nope_head_dim + m.qk_rope_head_dim), m.q_lora_rank),
                  (m.hidden_size, h * m.v_head_dim)]
        out = []
        for n, k in shapes:
            if n and k and n % 128 == 0 and k % 128 == 0:
                out.append(self._def(ops.gemm_fp8_block_scale, n, k))
            else:
                self.unmapped.add(f"MLA projection GEMM n{n} k{k} (not 128-aligned for FP8 block scale)")
        self.unmapped.add("MLA kv_a_proj_with_mqa GEMM (N = kv_lora_rank + rope dim is not 128-aligned)")
        return out

    def _sequence_ops(self) -> list[dict]:
        """Definitions whose one var axis is the number of sequences (one logits row each)."""
        m = self.model
        return [self._def(ops.gemm, _split(m.vocab_size, self.tp, "vocab_size"), m.hidden_size),
                self._def(ops.top_k_top_p_sampling, m.vocab_size)]

    def _rope(self) -> dict | None:
        m = self.model
        if (m.rope_scaling or {}).get("rope_type") == "llama3" and m.attention_kind == "gqa":
            return self._def(ops.rope_llama31, self.heads, self.kv_heads, m.head_dim, m.rope_theta, m.rope_scaling)
        self.unmapped.add(f"RoPE of {m.model_type} (only Llama-3.1 RoPE is curated)")
        return None

    def _def(self, factory, *args) -> dict:
        key = (factory.__name__, repr(args))
        if key not in self._defs:
            extra = {"facts": self._facts()} if factory.__module__.endswith("attention") else {}
            self._defs[key] = factory(*args, model=self.model.name, tp=self.tp, **extra)
        return self._defs[key]

    def _facts(self) -> str:
        m = self.model
        return (f"{m.num_attention_heads} query heads and {m.num_key_value_heads} kv heads over tp "
                f"{self.tp} -> {self.heads} and {self.kv_heads} per rank, head_dim {m.head_dim}")


def _split(size: int, tp: int, what: str) -> int:
    if size % tp:
        raise ValueError(f"{what}={size} does not split over tp={tp}")
    return size // tp


def split_even(total: int, n: int) -> list[int]:
    base, extra = divmod(total, n)
    return [base + (i < extra) for i in range(n)]


def split_lengths(batch: Batch) -> tuple[list[int], list[int]]:
    """(query lengths, KV lengths) per sequence: the source's, or an even split of the totals."""
    qo = list(batch.q_lens) if batch.q_lens is not None else split_even(batch.q_tokens, batch.batch_size)
    if batch.kv_lens is not None:
        return qo, list(batch.kv_lens)
    cached = split_even(batch.kv_tokens - batch.q_tokens, batch.batch_size)
    return qo, [q + c for q, c in zip(qo, cached)]
