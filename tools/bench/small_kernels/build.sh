#!/usr/bin/env bash
# Builds the small-kernel A/B harness (harness.cu: the QKV norm warp kernels, RoPE and the decode residual step,
# this checkout's against those of an earlier revision, in CUDA graphs and with correctness cross-checks), here
# where nvcc is; run the binary on the GPU host (no Java needed):
#
#   tools/bench/small_kernels/build.sh [OLD_REV] [OUT_BINARY]    (default 5814f6e, the revision before small4)
#   ./harness            graphs of 20 launches, median of 30 replays, per variant
#   ncu --metrics gpu__time_duration.sum --csv ./harness profile      each variant once, cold caches
#
# The old kernels are the revision's qkv_norm.cu, rope.cu and norms.cu with their extern "C" names prefixed old_.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
rev=${1:-5814f6e}
out=${2:-$root/target/small-kernels-harness}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/old"
cp "$root"/src-native-kernels/*.cu "$root"/src-native-kernels/*.cuh "$here/harness.cu" "$work/"
git -C "$root" show "$rev:src-native-kernels/qkv_norm.cu" | sed 's/jemma_qkv_norm_w\b/old_qkv_norm_w/; s/void jemma_qkv_norm(/void old_qkv_norm(/; s/jemma_qkv_cache_row/old_qkv_cache_row/g; s/jemma_qkv_head/old_qkv_head/g; s/jemma_store_bf16x4/old_store_bf16x4/g; s/#define JEMMA_QKV/#define OLD_QKV/; s/QKV_W_PASSES/OLD_W_PASSES/g; s/JEMMA_QKV_QK_EQ_V/OLD_QKV_QK_EQ_V/g' > "$work/old/qkv_norm.cu"
git -C "$root" show "$rev:src-native-kernels/rope.cu" | sed 's/jemma_rope\b/old_rope/' > "$work/old/rope.cu"
git -C "$root" show "$rev:src-native-kernels/norms.cu" | sed 's/jemma_\(rms_norm_f1\|rms_norm_f4\|add_rms_norm_f1\|add_rms_norm_f4\|add_rms_norm_next_small\|add_rms_norm_next\|rms_norm_bf16\)\b/old_\1/g; s/rms_norm_group/old_rms_norm_group/g; s/add_rms_norm_row/old_add_rms_norm_row/g; s/add_rms_norm_next_row/old_add_rms_norm_next_row/g; s/struct Vec/struct OldVec/g; s/using V = Vec</using V = OldVec</g' > "$work/old/norms.cu"
nvcc=${NVCC:-/usr/local/cuda/bin/nvcc}
mkdir -p "$(dirname "$out")"
"$nvcc" -std=c++17 -O3 -arch=sm_90a -I "$work" -o "$out" "$work/harness.cu"
echo "built $out"
