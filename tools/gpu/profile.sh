#!/usr/bin/env bash
# Kernel-by-kernel profile of one 31B step on the GPU host (ncu, no counters beyond each kernel's duration):
#
#   bash tools/gpu/profile.sh decode [--profile-batch=N] [--attention-backend=...]   one eager decode step, 2k context
#   bash tools/gpu/profile.sh prefill [--prefill-tokens=N]                           one prefill (8k by default)
#
# Runs ModelBenchmark's "profile" section under `ncu --profile-from-start off` (the section opens the capture
# range around exactly one step after warm-ups), then tools/gpu/ncu_summary.py prints the kernels grouped by
# name (count, total and median microseconds, share) and the first layer's launch sequence. Eager launches:
# the durations are each kernel's own; a graph replay adds the gaps between them (compare with bench.sh).
set -uo pipefail
what=${1:-decode}; shift || true
out=${OUT:-/tmp/jemma-gpu-out}
mkdir -p "$out"
source "$(dirname "$0")/runtime.sh"          # $gpu, $java, $libs
cp="$gpu/classes:$libs"
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
[[ -n $ncu ]] || { echo "no ncu on this machine" >&2; exit 2; }
csv="$out/ncu-$what.csv"
timeout "${JEMMA_PROFILE_TIMEOUT:-240}" "$ncu" --clock-control none --cache-control none --profile-from-start off \
  --metrics gpu__time_duration.sum --csv --log-file "$csv" \
  "$java" ${JEMMA_BENCH_JAVA_OPTS:-} --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xmx32g -cp "$cp" \
  io.jemma.bench.gpu.ModelBenchmark --sections=profile --profile="$what" --out="$out/profile.tsv" "$@" \
  > "$out/profile-$what.log" 2>&1
rc=$?
grep -E "Exception|Error|==ERROR==|==WARNING==" "$out/profile-$what.log" | head -8
python3 "$(dirname "$0")/ncu_summary.py" "$csv"
echo "profile $what exit code $rc"
