#!/usr/bin/env bash
# The GPU benchmark (issue 4) on the GPU host (NVIDIA H200, no Java installed), from the repository root,
# with what tools/gpu/pack.sh prepared carried along (target/gpu and .jre/jre25.txz), like check.sh:
#
#   bash tools/gpu/bench.sh [--sections=copy,matmul,gemv,decode,prefill,spec] [--spec-rounds=N] [--prefill-runs=N] [--decode-steps=N]
#                           [--attention-backend=trtllm_mha|triton]   (default trtllm_mha: auto's choice
#                                                                      without speculation)
#
# Runs io.jemma.bench.gpu.ModelBenchmark: device copy bandwidth, cuBLASLt bf16 GEMM peak (8192^3 and the
# 31B 8k-prefill shapes), decode GEMV vs cuBLASLt, 31B decode steps at 2k context (batch 1, 8, 32, CUDA
# graphs) against the bandwidth floor, and the 31B 8k prefill against the GEMM peak, all with dummy
# weights generated on the GPU; spec: a speculative round (3 assistant drafts + verify of 4, dummy 31B
# assistant) against a plain decode step at batch 1, 8, 32. Prints a short table last; $OUT/bench.tsv has the same rows, bench.log
# everything. Sections are a list in ModelBenchmark.SECTIONS: add one there and name it here.
# Environment: JEMMA_GPU_DIR (the build, default target/gpu), JEMMA_BENCH_TIMEOUT (seconds, default 280),
# JEMMA_BENCH_JAVA_OPTS (e.g. -Djemma.cuda.pdl=false: decode matmuls as ordinary launches, for comparison).
set -uo pipefail
out=${OUT:-/tmp/jemma-gpu-out}
mkdir -p "$out"
source "$(dirname "$0")/runtime.sh"          # $gpu, $java, $libs
cp="$gpu/classes:$libs"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv,noheader 2>&1 | sed 's/^/[host] /'
start=$(date +%s)
timeout "${JEMMA_BENCH_TIMEOUT:-280}" "$java" ${JEMMA_BENCH_JAVA_OPTS:-} --enable-native-access=ALL-UNNAMED \
  --add-modules jdk.incubator.vector -Xmx32g -cp "$cp" io.jemma.bench.gpu.ModelBenchmark --out="$out/bench.tsv" "$@" \
  > "$out/bench.log" 2>&1
rc=$?
# Progress and errors in brief, then the table (the lines after the last "[bench]" line).
grep -E "^\[bench\] section|Exception|Error" "$out/bench.log" | cut -c1-240 | head -30
if [[ $rc == 0 ]]; then
  awk '/^\[bench\]/ { last = NR } { line[NR] = $0 } END { for (i = last + 1; i <= NR; i++) print line[i] }' "$out/bench.log"
else
  grep -E "^\[bench\] " "$out/bench.log" | grep -v "section .* done" | cut -c9-   # the rows measured before it stopped
fi
echo "bench exit code $rc after $(( $(date +%s) - start )) s (log: bench.log; rows: bench.tsv)"
exit $rc
