#!/usr/bin/env bash
# Accuracy eval of the packaged server on 127.0.0.1: starts it (the embedded model unless JEMMA_MODEL_PATH or
# JEMMA_OPTS say otherwise), runs the test set (src/test/resources/eval/test.jsonl: held-out synthetic
# tasks with exact answers, see docs/embedded-model.md) through its OpenAI API with io.jemma.bench.EvalServing
# at each concurrency, and prints exact-match accuracy, output tokens/s and, when the server speculates, the
# accept length (the mean of the engine's histogram jemma_spec_accept_length_per_round over the run, from /q/metrics).
#
#   tools/eval/run.sh [CONCURRENCIES...]          (default: 1 8 32; needs ./mvnw package first)
#   JEMMA_OPTS="-Djemma.speculative-draft-model-path=embedded" tools/eval/run.sh 8    (the embedded assistant, 3-1-4)
#   JEMMA_OPTS="-Djemma.speculative-draft-model-path=DIR" tools/eval/run.sh 8
#
# Environment: PORT (18090), EVAL_ARGS (more EvalServing options, e.g. "--num-items 160 --min-accuracy 0.95"),
# JEMMA_OPTS (-D settings of the server), JEMMA_* settings.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .mvn/jdk.sh
port=${PORT:-18090}
if [[ $# -gt 0 ]]; then levels=("$@"); else levels=(1 8 32); fi
[ -f target/quarkus-app/quarkus-run.jar ] || { echo "eval: run ./mvnw package first" >&2; exit 2; }
log=$(mktemp)
# shellcheck disable=SC2086
"$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED ${JEMMA_OPTS:-} \
  -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" -jar target/quarkus-app/quarkus-run.jar >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/q/health/ready" >/dev/null && break; sleep 1; done
curl -sf "http://127.0.0.1:$port/q/health/ready" >/dev/null || { cat "$log"; exit 1; }
status=0
for c in "${levels[@]}"; do
  # shellcheck disable=SC2086
  ./mvnw -q -Peval exec:exec -Dargs="--base-url http://127.0.0.1:$port --max-concurrency $c ${EVAL_ARGS:-}" \
    || status=1
done
exit $status
