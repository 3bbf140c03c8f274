#!/usr/bin/env bash
# The prefill attention kernels' check in one GPU call (after `tools/gpu/pack.sh` here; carry target/gpu and .jre):
# prefill-bench over every TMA kernel (twice), every gpu-tagged test of io.jemma.backend.cuda but the timing classes
# plus EngineGpuTest and SpeculativeEngineGpuTest, with AttentionGpuTest's sm_90a alternatives
# (-Djemma.test.sm90-suffixes), the 8k prefill timings, and the 31B prefill bench. About 3 minutes on an H200; the
# same as tools/gpu/all.sh without the eval gate (which needs `pack.sh --eval`), the decode / spec benchmarks and the
# QKV norm bench. Session 8 ran it as .dev/lead/final8.sh (docs/benchmarks.md).
#
#   bash tools/gpu/attention-check.sh
set -uo pipefail
out=${OUT:-/tmp/jemma-gpu-out}
t0=$(date +%s)
el() { echo "== $1 after $(( $(date +%s) - t0 )) s"; }
mkdir -p "$out/tests" "$out/attention" "$out/bench"
timeout 120 bash tools/gpu/prefill-bench.sh --passes 2 _tma > "$out/prefill-bench.txt" 2>&1; echo "prefill-bench exit $?" >> "$out/prefill-bench.txt"
el prefill-bench
OUT=$out/tests JEMMA_GPU_SELECT="--select-package io.jemma.backend.cuda --select-class io.jemma.engine.EngineGpuTest --select-class io.jemma.engine.SpeculativeEngineGpuTest --exclude-classname .*Timings.* --exclude-classname .*Profile.*" \
  JEMMA_GPU_JAVA_OPTS="-Djemma.test.sm90-suffixes=_tma,_tma_n80,_split_n48,_split_n48_tma,_split_ahead_tma,_split_ahead_n48_tma" \
  JEMMA_GPU_TIMEOUT=330 bash tools/gpu/check.sh > "$out/tests/check.txt" 2>&1
{
  grep -E "tests (successful|failed)|^checks:|JUnit exit" "$out/tests/check.txt"
  sed 's/\x1b\[[0-9;]*m//g' "$out/tests/junit.log" | grep -E "✘|^    => " | cut -c1-220 | head -12
  awk '/^test  /,0' "$out/tests/check.txt" | grep -vE "^timings|^eval " | head -70
  grep -E "^dispatch (auto|trtllm)" "$out/tests/junit.log" | cut -c1-220 | head -8
} | tee "$out/tests/summary.txt"
el tests
OUT=$out/attention JEMMA_GPU_TIMEOUT=90 JEMMA_GPU_SELECT="--select-method io.jemma.backend.cuda.AttentionTimingsGpuTest#prefill8kCausal" \
  JEMMA_GPU_JAVA_OPTS="-Djemma.test.sm90-suffixes=_tma,_split_n48_tma,_split_ahead_tma,_plain,_split_n48" \
  bash tools/gpu/check.sh 2>&1 | grep -E "prefill|GEMM|copy|exit" | cut -c1-200 | head -30
el attention
OUT=$out/bench JEMMA_BENCH_TIMEOUT=150 bash tools/gpu/bench.sh --sections=copy,matmul,prefill --prefill-runs=5 2>&1 \
  | grep -E "^(copy|matmul   peak|matmul   cuBLAS|prefill)" | cut -c1-240
el bench
cat "$out/prefill-bench.txt"
echo "== test summary"; grep -E "tests (successful|failed)|^checks:|JUnit exit|✘|=>|FAIL" "$out/tests/summary.txt" | head -30
