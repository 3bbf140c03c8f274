#!/usr/bin/env bash
# Where the default prefill attention kernels wait, by Nsight Compute on the GPU host (after tools/gpu/pack.sh; carry
# target/gpu and .jre), from the repository root:
#
#   bash tools/gpu/stalls.sh [kernel ...]     default: jemma_attn_extend_sm90_hd256_tma_n80 jemma_attn_extend_sm90_hd512_split_ahead_n48_tma
#
# For each kernel, its 4th launch in AttentionTimingsGpuTest#prefill8kCausal (warm): the per-SASS-instruction stall
# samples (SourceCounters, --page source): the share by opcode and the 22 hottest instructions. (The stall reasons
# as cycles per issued instruction are a separate ncu pass: --section WarpStateStats --metrics
# regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio, without --page source.) A try_wait loop's
# `@!P0 BRA` at the top means the warps wait on a barrier; the SYNCS.PHASECHK before it names which one (see
# src-native-kernels/NOTES.md, "Stall reasons"). Clocks are left alone (--clock-control none). Writes $OUT/src-*.csv.
# The SASS view needs no line tables; for CUDA source lines build with JEMMA_KERNEL_LINEINFO=1 tools/gpu/pack.sh.
set -uo pipefail
out=${OUT:-/tmp/jemma-gpu-out}
mkdir -p "$out"
source "$(dirname "$0")/runtime.sh"          # $gpu, $java, $libs
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
[[ -n $ncu ]] || { echo "no ncu on this machine" >&2; exit 2; }
cp="$gpu/classes:$gpu/test-classes:src/main/resources:$libs"
console=$(ls "$gpu"/lib/junit-platform-console-standalone-*.jar)
kernels=("$@")
[[ ${#kernels[@]} -gt 0 ]] || kernels=(jemma_attn_extend_sm90_hd256_tma_n80 jemma_attn_extend_sm90_hd512_split_ahead_n48_tma)
for k in "${kernels[@]}"; do
  csv="$out/src-$k.csv"
  timeout "${JEMMA_PROFILE_TIMEOUT:-240}" "$ncu" --clock-control none --kernel-name "regex:^${k}\$" --launch-skip 3 \
    --launch-count 1 --section SourceCounters --page source --print-source sass --csv \
    "$java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xmx48g -jar "$console" execute \
    --class-path "$cp" --select-method io.jemma.backend.cuda.AttentionTimingsGpuTest#prefill8kCausal --include-tag gpu \
    --disable-banner > "$csv" 2>&1
  echo "== $k (ncu exit code $?)"
  python3 - "$csv" <<'PY'
import collections, csv, re, sys
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
head = next((i for i, r in enumerate(rows) if any(c.startswith("Source") for c in r) and any("Sampling" in c for c in r)), None)
if head is None:
    print("  no source table (see the csv)")
    sys.exit()
h = rows[head]
src = next(i for i, c in enumerate(h) if c.startswith("Source"))
addr = next(i for i, c in enumerate(h) if c.startswith("Address"))
alls = next(i for i, c in enumerate(h) if "All Samples" in c)
data = []
for r in rows[head + 1:]:
    try:
        data.append((float(r[alls].replace(",", "")), r[addr], r[src].strip()))
    except (IndexError, ValueError):
        pass
total = sum(v for v, _, _ in data) or 1
ops = collections.Counter()
for v, _, s in data:
    ops[re.sub(r"^@!?U?P\w+\s+", "", s).split(" ")[0]] += v
print(f"  {len(data)} instructions, {total:.0f} samples; by opcode:",
      ", ".join(f"{o} {100 * v / total:.1f}%" for o, v in ops.most_common(12)))
for v, a, s in sorted(data, reverse=True)[:22]:
    print(f"  {100 * v / total:5.1f}%  {a:>14}  {s[:110]}")
PY
done
