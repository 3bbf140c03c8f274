#!/usr/bin/env bash
# Soak: the packaged app on 127.0.0.1, CLIENTS concurrent streaming clients with random sampling parameters
# (chat and text completions, n, stop, penalties, logprobs; SoakLoad.java) for DURATION seconds, then, once
# idle, the checks: no 5xx, every stream ended with a finish_reason and [DONE], and nothing leaked
# (jemma_kv_cache_usage and jemma_num_running_reqs at /q/metrics back at 0). Prints requests served, TTFT
# p50/p99, the process's RSS (VmRSS) and the JVM heap used (jvm_memory_used_bytes{area="heap"}) before and
# after. Bounded in time: DURATION plus at most about 5 minutes of start-up and waiting. Exit 0 when all
# checks pass, 1 when one fails, 2 when it could not run.
#
#   tools/soak/run.sh                          defaults: 16 clients, 60 s, the embedded model
#   CLIENTS=32 DURATION=600 tools/soak/run.sh
#   DURATION=30 tools/soak/run.sh              a short run (CI-sized)
#   JEMMA_OPTS="-Djemma.model-path=/models/gemma-4" MODEL=gemma-4 tools/soak/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CLIENTS=${CLIENTS:-16}
DURATION=${DURATION:-60}
MODEL=${MODEL:-jemma-embedded}
HEAP=${HEAP:-1g}
JEMMA_OPTS=${JEMMA_OPTS:-}

release_of() { [ -x "$1/bin/java" ] && sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null || true; }
ok() { v=$(release_of "$1"); [ -n "$v" ] && [ "$v" -ge 25 ]; }
java_home=
if [ -n "${JAVA_HOME-}" ] && ok "$JAVA_HOME"; then java_home=$JAVA_HOME; else
  for d in "$root"/.jre /usr/lib/jvm/*25* /usr/lib/jvm/* /opt/java/* /opt/jdk* "$HOME"/.sdkman/candidates/java/*; do
    if [ -d "$d" ] && ok "$d"; then java_home=$d; break; fi
  done
fi
[ -n "$java_home" ] || { echo "soak: no JDK 25 found; set JAVA_HOME" >&2; exit 2; }
java="$java_home/bin/java"

jar="$root/target/quarkus-app/quarkus-run.jar"
if [ ! -f "$jar" ]; then
  echo "soak: building the application (./mvnw package -DskipTests)"
  (cd "$root" && ./mvnw -B -q package -DskipTests)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/jemma-soak.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
base="http://127.0.0.1:$port"
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

# shellcheck disable=SC2086
"$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx"$HEAP" \
  -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" $JEMMA_OPTS -jar "$jar" >"$work/server.log" 2>&1 &
pid=$!
for i in $(seq 1 480); do
  if curl -fsS -o /dev/null "$base/q/health/ready" 2>/dev/null; then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "soak: the server exited:" >&2; tail -20 "$work/server.log" >&2; exit 2; }
  [ "$i" = 480 ] && { echo "soak: the server was not ready within 240 s" >&2; exit 2; }
  sleep 0.5
done

metric() { # name [label filter] -> the sum of the samples
  curl -fsS "$base/q/metrics" | awk -v n="$1" -v f="${2-}" '
    index($0, "#") == 1 { next }
    { split($1, a, "{"); if (a[1] == n && (f == "" || index($1, f) > 0)) s += $NF }
    END { printf "%.0f\n", s + 0 }' ; }
metric_raw() { curl -fsS "$base/q/metrics" | awk -v n="$1" 'index($0,"#")!=1 { split($1,a,"{"); if (a[1]==n) s+=$NF } END { print s+0 }'; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

# A short warm-up, so that "before" is the ready, JIT-compiled server rather than a cold one.
curl -fsS -o /dev/null -H 'Content-Type: application/json' \
  -d "{\"model\":\"$MODEL\",\"prompt\":\"warm up\",\"max_tokens\":8}" "$base/v1/completions" || true
rss_before=$(rss)
heap_before=$(metric jvm_memory_used_bytes 'area="heap"')

echo "soak: $CLIENTS clients for $DURATION s against $base (pid $pid, model $MODEL, -Xmx$HEAP)"
load_rc=0
"$java" "$here/SoakLoad.java" "$base" "$MODEL" "$CLIENTS" "$DURATION" | tee "$work/load.txt" || load_rc=$?

# Idle: every sequence gone and every KV page back, within a bounded wait.
leak=1
for _ in $(seq 1 60); do
  running=$(metric_raw jemma_num_running_reqs); usage=$(metric_raw jemma_kv_cache_usage)
  queued=$(metric_raw jemma_num_queue_reqs)
  if [ "$running" = 0 ] && [ "$usage" = 0 ] && { [ "$queued" = 0 ] || [ -z "$queued" ]; }; then leak=0; break; fi
  sleep 0.5
done
rss_after=$(rss)
heap_after=$(metric jvm_memory_used_bytes 'area="heap"')
errors_logged=$(grep -c ' ERROR ' "$work/server.log" || true)

echo "after idle:          jemma_num_running_reqs=$running jemma_num_queue_reqs=${queued:-?} jemma_kv_cache_usage=$usage"
echo "RSS before / after:  $(mib "$rss_before") / $(mib "$rss_after")"
echo "heap used before / after: $(mib $((heap_before / 1024))) / $(mib $((heap_after / 1024)))"
echo "server ERROR lines:  $errors_logged (log: $work/server.log)"
status=0
[ "$load_rc" = 0 ] || { echo "soak: FAILED: a 5xx, a dropped connection or a stream without finish_reason/[DONE]"; status=1; }
[ "$leak" = 0 ] || { echo "soak: FAILED: not idle after the load (leaked sequences or KV pages)"; status=1; }
[ "$status" = 0 ] && echo "soak: passed"
exit "$status"
