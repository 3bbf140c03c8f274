#!/usr/bin/env bash
# The fused Gemma QKV norm against the unfused sequence (separate norms, RoPE, KV-cache write), per layer
# at Gemma 4 31B's shapes, 1 to 32 tokens, eager and from CUDA graphs (io.jemma.backend.cuda.QkvNormBenchmark).
# Runs on the GPU host from the repository root with what tools/gpu/pack.sh prepared (as tools/gpu/check.sh):
#
#   JEMMA_GPU_DIR=target/gpu bash tools/bench/qkv_norm.sh      (the table on stdout; TSV in $OUT)
set -uo pipefail
gpu=${JEMMA_GPU_DIR:-target/gpu}
for need in .jre/jre25.txz "$gpu/classes/cuda/jemma_kernels.fatbin" "$gpu/lib/jcuda-natives-driver.jar"; do
  [[ -e $need ]] || { echo "missing $need: run tools/gpu/pack.sh locally and carry target/gpu and .jre" >&2; exit 2; }
done
rt=/tmp/jemma-jre
if [[ ! -x $rt/jre25/bin/java ]]; then
  mkdir -p "$rt" && tar xJf .jre/jre25.txz -C "$rt" || { echo "cannot unpack the runtime" >&2; exit 2; }
fi
cp="$gpu/classes:$gpu/test-classes:$gpu/lib/jcuda-12.6.0.jar:$gpu/lib/jcuda-natives-driver.jar"
exec "$rt/jre25/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xmx8g \
  -cp "$cp" io.jemma.backend.cuda.QkvNormBenchmark
