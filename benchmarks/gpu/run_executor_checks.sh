#!/usr/bin/env bash
# The executor's GPU checks in one device call (~9 min on one H100, no flashinfer JIT or nvcc):
#   source .gpu_wheels/device_env.sh && bash benchmarks/gpu/run_executor_checks.sh
# Each step has its own time limit; a failing step does not stop the others. Logs go to $OUT.
# FIB_NO_JIT=1 leaves out solutions that need a multi-minute build (flashinfer JIT, nvcc).
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/fib-e-out}"; mkdir -p "$OUT"; export OUT
export TRITON_INTERPRET=0 FIB_NO_JIT="${FIB_NO_JIT:-1}"
PY="${PYTHON:-python3}"
step() { local name=$1 limit=$2; shift 2; echo "=== $name (limit ${limit}s)"; \
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; echo "exit $?"; grep -v "^PASSED \|^prebuilt" "$OUT/$name.log" | tail -n 45; }
if "$PY" -c "import pytest" 2>/dev/null; then
  step gpu_tests 90 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_timing_gpu.py tests/test_executor.py tests/test_anticheat.py
fi
step cupti_crosscheck 100 "$PY" benchmarks/gpu/cupti_crosscheck.py
step fp8_check 40 "$PY" benchmarks/gpu/fp8_check.py
step vs_peer 190 "$PY" benchmarks/gpu/vs_peer.py
step baselines "${BASELINE_LIMIT:-150}" "$PY" benchmarks/gpu/bench_baselines.py flashinfer-bench \
  --definition gqa_paged_prefill_causal_h32_kv8_d128_ps16 --definition gqa_ragged_prefill_causal_h32_kv8_d128 \
  --definition mla_paged_decode_h16_ckv512_kpe64_ps1 --definition top_k_top_p_sampling_from_probs_v128256 \
  --definition moe_softmax_topk8_renorm_e128_h2048_i768 --definition fused_add_rmsnorm_h4096 \
  --definition rope_llama31_h32_kv8_d128 --skip-solution __flashinfer --skip-solution __cuda \
  --stop-after $(( ${BASELINE_LIMIT:-150} - 50 ))
# The device tool brings back at most 8 files: logs and JSON travel as one archive.
(cd "$OUT" && tar czf checks.tgz --remove-files *.log *.json *.md 2>/dev/null; ls "$OUT")
