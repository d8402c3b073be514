#!/usr/bin/env bash
# What the curated dataset still lacks on a GPU, in two back-to-back device calls (the machine
# stays warm only 30 s between calls, and flashinfer's JIT cache lives on it):
#   call 1:  source .gpu_wheels/device_env.sh && bash benchmarks/gpu/finish_curated.sh start   (~9 min)
#   call 2:  source .gpu_wheels/device_env.sh && bash benchmarks/gpu/finish_curated.sh finish  (~9 min)
# "start" launches the flashinfer JIT builds of the missing solutions in a detached session (they
# outlive the call), then evaluates the torch baselines that need no build. "finish" waits for the
# builds, evaluates the flashinfer baselines, checks the references against flashinfer (MoE and
# FP8 included) and repeats the CUPTI cross-check with flashinfer kernels. Outputs go to $OUT as
# at most 8 files.
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/fib-finish-out}"; mkdir -p "$OUT"
export TRITON_INTERPRET=0 OUT
PY="${PYTHON:-python3}"
MISSING="--definition gqa_paged_prefill_causal_h32_kv8_d128_ps16 --definition gqa_ragged_prefill_causal_h32_kv8_d128 \
  --definition mla_paged_decode_h16_ckv512_kpe64_ps1 --definition top_k_top_p_sampling_from_probs_v128256 \
  --definition moe_softmax_topk8_renorm_e128_h2048_i768 --definition gemm_fp8_block_scale_n1536_k7168"
case "${1:-}" in
  start)
    setsid nohup "$PY" benchmarks/gpu/warm_jit.py prefill ragged mla_ top_k moe_ fp8 > /tmp/warm_jit.log 2>&1 < /dev/null &
    timeout 480 "$PY" benchmarks/gpu/bench_baselines.py flashinfer-bench $MISSING --skip-solution __flashinfer \
      --stop-after 420 > "$OUT/baselines_torch.log" 2>&1
    tail -n 30 "$OUT/baselines_torch.log"; cp /tmp/warm_jit.log "$OUT/" ;;
  finish)
    while pgrep -f warm_jit.py > /dev/null; do sleep 5; done; tail -n 12 /tmp/warm_jit.log
    timeout 300 "$PY" benchmarks/gpu/bench_baselines.py flashinfer-bench $MISSING --stop-after 260 \
      > "$OUT/baselines_flashinfer.log" 2>&1
    tail -n 30 "$OUT/baselines_flashinfer.log"
    timeout 150 "$PY" benchmarks/gpu/check_references.py --only moe_ --only fp8 --budget 120 \
      > "$OUT/check_references.log" 2>&1
    tail -n 30 "$OUT/check_references.log"
    timeout 90 "$PY" benchmarks/gpu/cupti_crosscheck.py > "$OUT/cupti_crosscheck.log" 2>&1
    tail -n 12 "$OUT/cupti_crosscheck.log"
    (cd "$OUT" && tar czf logs.tgz --remove-files *.log *.json 2>/dev/null; ls) ;;
  *) echo "usage: $0 start|finish"; exit 2 ;;
esac
