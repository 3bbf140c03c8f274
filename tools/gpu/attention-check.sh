#!/usr/bin/env bash
# The prefill attention kernels' check in one GPU call (after `tools/gpu/pack.sh` here, no --eval needed; carry
# target/gpu and .jre): tools/gpu/all.sh without the eval gate, the decode / spec benchmarks and the QKV norm bench,
# with AttentionGpuTest's and the timings' sm_90a alternatives (-Djemma.test.sm90-suffixes). About 3 minutes on an
# H200. Session 8's call K ran the same steps as .dev/lead/final8.sh (docs/benchmarks.md).
#
#   bash tools/gpu/attention-check.sh
JEMMA_ALL_EVAL=0 JEMMA_ALL_QKV=0 JEMMA_ALL_BENCH="--sections=copy,matmul,prefill --prefill-runs=5" \
  JEMMA_GPU_JAVA_OPTS=${JEMMA_GPU_JAVA_OPTS:--Djemma.test.sm90-suffixes=_tma,_tma_n80,_plain,_split_n48,_split_n48_tma,_split_ahead_tma,_split_ahead_n48_tma} \
  exec bash "$(dirname "$0")/all.sh"
