"""flashinfer fused MoE (cutlass_fused_moe, bf16 weights): routing in torch, experts fused.

Routing (softmax over fp32 logits, top-k, renormalise) is a few small torch ops; the expert
GEMMs, SwiGLU and the weighted combine are one flashinfer call. Its GEMM1 weight holds the up
rows first and the gate rows second (TensorRT-LLM's w3/w1 order; the kernel applies silu to the
second half), while the definition's ``gate_up_weights`` is gate first (SGLang/vLLM's w13), so a
swapped copy is made once per weight tensor and reused while that tensor is unchanged (the
same identity-and-version rule as the attention plans). The JIT build of this kernel takes
minutes on first use.
"""

import torch

import flashinfer

TOP_K = 8

_SWAPPED = {}


def _up_then_gate(gate_up_weights):
    entry = _SWAPPED.get(gate_up_weights.device)
    if entry is None or entry[0] is not gate_up_weights or entry[1] != gate_up_weights._version:
        gate, up = gate_up_weights.chunk(2, dim=1)
        entry = (gate_up_weights, gate_up_weights._version, torch.cat([up, gate], dim=1).contiguous())
        _SWAPPED[gate_up_weights.device] = entry
    return entry[2]


@torch.no_grad()
def moe(hidden_states, routing_logits, gate_up_weights, down_weights, output):
    weights, experts = torch.softmax(routing_logits.float(), dim=-1).topk(TOP_K, dim=-1)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    flashinfer.fused_moe.cutlass_fused_moe(
        hidden_states, experts.to(torch.int32), weights, _up_then_gate(gate_up_weights),
        down_weights, torch.bfloat16, quant_scales=[], output=output)
