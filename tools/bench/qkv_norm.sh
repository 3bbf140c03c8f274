#!/usr/bin/env bash
# The fused Gemma QKV norm against the unfused sequence (separate norms, RoPE, KV-cache write), per layer
# at Gemma 4 31B's shapes, 1 to 32 tokens, eager and from CUDA graphs (io.jemma.backend.cuda.QkvNormBenchmark).
# Runs on the GPU host from the repository root with what tools/gpu/pack.sh prepared (as tools/gpu/check.sh):
#
#   JEMMA_GPU_DIR=target/gpu bash tools/bench/qkv_norm.sh      (the table on stdout; TSV in $OUT)
set -uo pipefail
source "$(dirname "$0")/../gpu/runtime.sh"   # $gpu, $java, $libs
cp="$gpu/classes:$gpu/test-classes:$libs"
exec "$java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xmx8g \
  -cp "$cp" io.jemma.backend.cuda.QkvNormBenchmark
