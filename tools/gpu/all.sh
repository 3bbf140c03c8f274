#!/usr/bin/env bash
# Everything on the GPU host in one call (after `tools/gpu/pack.sh --eval` here; carry target/gpu and .jre):
# the prefill kernels without Java (tools/gpu/prefill-bench.sh over every TMA kernel, twice), every gpu-tagged test
# (kernels, whole models, engine, speculation, issue 9's eval gate; the timing classes excluded), the prefill
# attention timings, the 31B benchmark (copy, matmul, decode, prefill, spec) and the fused QKV norm benchmark. Prints
# a short summary; the full logs stay under $OUT. JEMMA_GPU_JAVA_OPTS reaches both test runs (check.sh).
#
#   bash tools/gpu/all.sh          (about 3-4 minutes on an H200)
#
# A narrower call (tools/gpu/attention-check.sh is one): JEMMA_ALL_EVAL=0 leaves out the eval gate (a pack without
# --eval); JEMMA_ALL_BENCH, the bench.sh arguments; JEMMA_ALL_QKV=0 leaves out the QKV norm benchmark.
set -uo pipefail
out=${OUT:-/tmp/jemma-gpu-out}
eval_gate=${JEMMA_ALL_EVAL:-1}
bench_args=${JEMMA_ALL_BENCH:---sections=copy,matmul,decode,prefill,spec --prefill-runs=5 --decode-steps=40 --spec-rounds=12}
t0=$(date +%s)
el() { echo "== $1 after $(( $(date +%s) - t0 )) s"; }
mkdir -p "$out/tests" "$out/attention" "$out/bench"
timeout 120 bash tools/gpu/prefill-bench.sh --passes 2 _tma > "$out/prefill-bench.txt" 2>&1
echo "prefill-bench exit $?" >> "$out/prefill-bench.txt"
el prefill-bench
select="--select-package io.jemma.backend.cuda --select-class io.jemma.engine.EngineGpuTest --select-class io.jemma.engine.SpeculativeEngineGpuTest"
(( eval_gate )) && select+=" --select-class io.jemma.engine.EmbeddedEvalGpuTest"
OUT=$out/tests JEMMA_GPU_SELECT="$select --exclude-classname .*Timings.* --exclude-classname .*Profile.*" \
  JEMMA_GPU_TIMEOUT=330 bash tools/gpu/check.sh > "$out/tests/check.txt" 2>&1
{
  grep -E "tests (successful|failed)|^checks:|JUnit exit" "$out/tests/check.txt"
  sed 's/\x1b\[[0-9;]*m//g' "$out/tests/junit.log" | grep -E "✘|^    => " | cut -c1-220 | head -12
  awk '/^test  /,0' "$out/tests/check.txt" | grep -vE "^timings|^eval " | head -70
  grep -E "eval-gate: (PASS|FAIL)|^dispatch (auto|trtllm)" "$out/tests/junit.log" | cut -c1-220 | head -16
} | tee "$out/tests/summary.txt"
el tests
OUT=$out/attention JEMMA_GPU_TIMEOUT=90 JEMMA_GPU_SELECT="--select-method io.jemma.backend.cuda.AttentionTimingsGpuTest#prefill8kCausal" \
  bash tools/gpu/check.sh 2>&1 | grep -E "prefill|GEMM|copy|exit" | cut -c1-200 | head -30
el attention
# shellcheck disable=SC2086 (bench_args is a list of arguments)
OUT=$out/bench JEMMA_BENCH_TIMEOUT=220 bash tools/gpu/bench.sh $bench_args 2>&1 \
  | grep -E "^(copy|matmul   peak|matmul   cuBLAS|decode|prefill|spec)" | cut -c1-240
el bench
if (( ${JEMMA_ALL_QKV:-1} )); then
  OUT=$out/bench timeout 100 bash tools/bench/qkv_norm.sh 2>&1 | tail -27
fi
el all
# The summaries once more at the end: the call's output tail keeps only the last 12,000 characters.
cat "$out/prefill-bench.txt"
echo "== test summary"; grep -E "tests (successful|failed)|^checks:|JUnit exit|✘|=>|FAIL" "$out/tests/summary.txt" | head -30
