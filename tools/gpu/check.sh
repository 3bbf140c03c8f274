#!/usr/bin/env bash
# Runs the gpu-tagged tests on the GPU host (NVIDIA H200, CUDA 13 driver, no Java installed), from the
# repository root, with what tools/gpu/pack.sh prepared carried along: target/gpu and .jre/jre25.txz.
#
#   bash tools/gpu/check.sh        (writes logs and the JUnit XML under $OUT when set)
#
# Unpacks the Java runtime, runs the io.jemma.backend.cuda tests tagged gpu with the JUnit console
# launcher (every kernel against the CPU backend on fresh random inputs, outputs poisoned with NaN,
# then the timings), and prints a short table last: per test the number of checks, the largest
# relative error and the failures; then every failed case and the timings. Everything else is in $OUT:
# gpu-report.tsv (every check and timing), junit.log, junit/ (XML), host.txt.
set -uo pipefail
out=${OUT:-/tmp/jemma-gpu-out}
mkdir -p "$out"
select=${JEMMA_GPU_SELECT:---select-package io.jemma.backend.cuda}   # e.g. "--select-class io.jemma.X"
java_opts=${JEMMA_GPU_JAVA_OPTS:-}                 # e.g. "-Djemma.cuda.gemv=false" (bisecting a kernel)
# $gpu, $java, $libs (JEMMA_GPU_DIR: a helper's own build, e.g. .dev/NAME/gpu)
source "$(dirname "$0")/runtime.sh"

# What we run on (read-only queries).
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv 2>&1
  ls /usr/local/cuda-13.0/targets/x86_64-linux/lib/libcublasLt.so* 2>&1
  "$java" -version 2>&1
} | tee "$out/host.txt"

report=$out/gpu-report.tsv
rm -f "$report"
# src/main/resources last: the embedded model and its assistant from the checkout (pack.sh does not copy them).
cp="$gpu/classes:$gpu/test-classes:src/main/resources:$libs"
console=$(ls "$gpu"/lib/junit-platform-console-standalone-*.jar)
start=$(date +%s)
timeout ${JEMMA_GPU_TIMEOUT:-560} "$java" $java_opts --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xmx48g \
  -Djemma.gpu.report="$report" -jar "$console" execute \
  --class-path "$cp" $select --include-tag gpu \
  --disable-banner --details=tree --reports-dir "$out/junit" > "$out/junit.log" 2>&1
rc=$?
echo "JUnit exit code $rc after $(( $(date +%s) - start )) s (log: junit.log; XML: junit/)"

# Failures in brief: which test, and its message (the stack traces stay in junit.log).
grep -E "^  JUnit Jupiter:|^    => " "$out/junit.log" | cut -c1-300 | head -40
grep -E "tests (successful|failed|aborted|skipped)|containers failed" "$out/junit.log"

if [[ -s $report ]]; then
  # One row per test (the full list is in gpu-report.tsv), every failed case, then the timings.
  echo
  awk -F'\t' '
    $1 == "check" {
      v = ($4 ~ /Inf|NaN/) ? 1e300 : $4 + 0
      if (!($2 in n)) { order[++k] = $2; worst[$2] = -1 }
      n[$2]++
      if (v > worst[$2]) { worst[$2] = v; shown[$2] = $4; where[$2] = $3 }
      if ($6 != "PASS") { bad[$2]++; failed[++f] = $2 " | " $3 " | " $4 " > " $5 }
    }
    $1 == "time" { times[++t] = sprintf("%-8s %-58s %12s  %s", $2, substr($3, 1, 58), $4, $5) }
    END {
      printf "%-14s %6s %11s %5s  %s\n", "test", "checks", "max rel err", "fails", "worst case"
      for (i = 1; i <= k; i++) {
        x = order[i]
        printf "%-14s %6d %11s %5d  %s\n", x, n[x], shown[x], bad[x] + 0, substr(where[x], 1, 60)
      }
      if (f > 0) { print ""; print "FAILED cases:"; for (i = 1; i <= f && i <= 30; i++) print "  " failed[i] }
      if (t > 0) { print ""; print "timings (median of 50, after 10 warm-up runs):"; for (i = 1; i <= t; i++) print times[i] }
    }' "$report"
  echo
  echo "checks: $(grep -c $'\tPASS$' "$report") pass, $(grep -c $'\tFAIL$' "$report") fail; JUnit exit code $rc"
else
  echo "no report written: see $out/junit.log"
  tail -40 "$out/junit.log"
fi
exit $rc
