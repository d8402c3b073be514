#!/usr/bin/env bash
# The executor's own figures in one device call (~7 min on an H100, no flashinfer JIT):
#   source .gpu_wheels/device_env.sh && bash benchmarks/gpu/measure_executor.sh
# GPU tests; throughput and latency agreement against the peer, with each side's fixed cost and
# steady rate (--scaling) and, when BASELINE names a checkout of an earlier commit, that commit's
# executor in the same call; a sampling profile of our worker (its own run: sampling slows it);
# the CUPTI cross-check. Logs packed into one tarball.
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/fib-measure-out}"; mkdir -p "$OUT"
export TRITON_INTERPRET=0 OUT FIB_NO_JIT=1
PY="${PYTHON:-python3}"
timeout 80 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_timing_gpu.py tests/test_executor.py \
  tests/test_anticheat.py > "$OUT/gpu_tests.log" 2>&1; tail -n 2 "$OUT/gpu_tests.log"
timeout 420 "$PY" benchmarks/gpu/vs_peer.py --scaling --skip-launch --rounds 4 ${BASELINE:+--baseline "$BASELINE"} \
  > "$OUT/vs_peer.log" 2>&1
grep -E "evaluations in|start-up|throughput_ratio|steady_ratio|wall_ratio|median_ratio\"" "$OUT/vs_peer.log"
FIB_WORKER_PROFILE="$OUT" timeout 60 "$PY" benchmarks/gpu/vs_peer.py --skip-peer --skip-launch \
  --json vs_peer_profiled.json > "$OUT/vs_peer_profiled.log" 2>&1; grep -E "evaluations in" "$OUT/vs_peer_profiled.log"
timeout 90 "$PY" benchmarks/gpu/cupti_crosscheck.py > "$OUT/cupti_nojit.log" 2>&1; tail -n 9 "$OUT/cupti_nojit.log"
(cd "$OUT" && tar czf logs-measure.tgz --remove-files ./*.log ./*.json ./*.txt 2>/dev/null; ls -la)
