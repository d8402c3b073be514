#!/usr/bin/env bash
# Engineer E's GPU checks in one device call (~5 min on one H100):
#   bash benchmarks/gpu/run_executor_checks.sh
# Each step has its own time limit; a failing step does not stop the others. Logs go to $OUT.
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/fib-e-out}"; mkdir -p "$OUT"; export OUT
PY="${PYTHON:-python3}"
step() { local name=$1 limit=$2; shift 2; echo "=== $name (limit ${limit}s)"; \
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; echo "exit $?"; tail -n 40 "$OUT/$name.log"; }
if "$PY" -c "import pytest" 2>/dev/null; then
  step gpu_tests 150 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_executor.py tests/test_anticheat.py
fi
step cupti_crosscheck 120 "$PY" benchmarks/gpu/cupti_crosscheck.py
step vs_peer 270 "$PY" benchmarks/gpu/vs_peer.py
