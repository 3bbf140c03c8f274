#!/usr/bin/env bash
# Serving benchmark of the packaged server on 127.0.0.1: starts it, runs the project's load generator
# (io.jemma.bench.BenchServing: sglang bench_serving's figures) at each concurrency, and prints the
# engine's overhead per step (time outside the forward pass / step time) from /q/metrics.
#
#   tools/bench/serving.sh [CONCURRENCIES...]        (default: 1 16 64; needs ./mvnw package first)
#
# Environment: PORT (18080), PROMPTS_PER_LEVEL (64), INPUT_LEN (128), OUTPUT_LEN (64), JEMMA_* settings.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .mvn/jdk.sh
port=${PORT:-18080}
if [[ $# -gt 0 ]]; then levels=("$@"); else levels=(1 16 64); fi
log=$(mktemp)
"$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" -jar target/quarkus-app/quarkus-run.jar >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/q/health/ready" >/dev/null && break; sleep 1; done
curl -sf "http://127.0.0.1:$port/q/health/ready" >/dev/null || { cat "$log"; exit 1; }

metric() { curl -s "http://127.0.0.1:$port/q/metrics" | awk -v m="$1" '$1 ~ "^"m"[{ ]" || $1 == m {s += $2} END {print s + 0}'; }
for c in "${levels[@]}"; do
  n=$(( ${PROMPTS_PER_LEVEL:-64} > c * 2 ? ${PROMPTS_PER_LEVEL:-64} : c * 2 ))
  f0=$(metric jemma_engine_forward_seconds_total); s0=$(metric jemma_engine_step_seconds_total)
  ./mvnw -q -Pbench-serving exec:exec -Dargs="--base-url http://127.0.0.1:$port --dataset random \
    --num-prompts $n --max-concurrency $c --random-input-len ${INPUT_LEN:-128} --random-output-len ${OUTPUT_LEN:-64} \
    --random-range-ratio 1.0 --warmup-requests 2 --tokenizer src/test/resources/golden/tiny-31b" | grep -v "requests done"
  f1=$(metric jemma_engine_forward_seconds_total); s1=$(metric jemma_engine_step_seconds_total)
  awk -v c="$c" -v f="$f1" -v f0="$f0" -v s="$s1" -v s0="$s0" \
    'BEGIN {f -= f0; s -= s0; printf "concurrency %d: engine steps %.3f s, forward %.3f s, overhead outside the forward %.1f%%\n\n", c, s, f, 100 * (s - f) / s}'
done
