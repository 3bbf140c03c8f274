#!/usr/bin/env bash
# Builds (here, with nvcc) or runs (on the H200) tools/gpu/prefill_bench.cu: the sm_90a prefill attention kernels timed
# and spot-checked without Java (see the .cu's header).
#
#   tools/gpu/prefill-bench.sh --build          here: writes target/gpu/prefill-bench (carried with target/gpu)
#   bash tools/gpu/prefill-bench.sh [ARGS...]   on the GPU host: --reps N --passes P --cases 012 NAME_SUBSTRING...
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/target/gpu/prefill-bench
if [[ ${1:-} == --build ]]; then
  nvcc=${NVCC:-/usr/local/cuda/bin/nvcc}
  mkdir -p "$(dirname "$bin")"
  "$nvcc" -std=c++17 -O3 -Xfatbin -compress-all -gencode arch=compute_90a,code=sm_90a -I "$root/src-native-kernels" \
    -o "$bin" "$root/tools/gpu/prefill_bench.cu" 2> >(grep -v "C7519\|^$" >&2)
  echo "wrote $bin"
  exit 0
fi
[[ -x $bin ]] || { echo "no $bin: run tools/gpu/prefill-bench.sh --build here and carry target/gpu" >&2; exit 2; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader 2>/dev/null || true
exec "$bin" "$@"
