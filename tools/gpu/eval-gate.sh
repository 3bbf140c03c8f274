#!/usr/bin/env bash
# Issue 9's gate on the H200 (io.jemma.engine.EmbeddedEvalGpuTest): the embedded model's 480 test items, greedy,
# on the CPU and on CUDA with both attention backends (triton, trtllm_mha), accuracy within 0.5 points of the CPU's,
# and the embedded assistant at 3-1-4 on CUDA: outputs equal to plain decoding, mean accept length >= 2.5.
# Prepare locally with `tools/gpu/pack.sh --eval`, carry target/gpu (or JEMMA_GPU_DIR) and .jre, then on the
# GPU host, from the repository root (the test set is the checkout's src/test/resources/eval/test.jsonl):
#
#   bash tools/gpu/eval-gate.sh
#
# Runs tools/gpu/check.sh on that one test class, then prints the gate's figures (the "eval-gate:" lines the
# test writes to junit.log). Exit code: the JUnit run's.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/jemma-gpu-out}
JEMMA_GPU_SELECT='--select-class io.jemma.engine.EmbeddedEvalGpuTest' JEMMA_GPU_TIMEOUT=${JEMMA_GPU_TIMEOUT:-280} \
  OUT=$out bash "$here/check.sh"
rc=$?
echo
echo "issue 9's H200 gate:"
grep -a '^eval-gate: ' "$out/junit.log" | cut -c12- | cut -c1-400
exit $rc
