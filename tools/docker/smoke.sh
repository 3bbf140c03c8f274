#!/usr/bin/env bash
# Rehearses Dockerfile.jvm without a Docker engine: what the image build and its entrypoint do, step by
# step, on this machine.
#
#   1. the build context: the files .dockerignore lets through (tools/lint/context.js, Docker's rules),
#      copied to a scratch directory;
#   2. the build stage's Maven command in that copy, with the local ~/.m2 (GO_OFFLINE=1: the dependency
#      layer's command into an empty repository first, then the package command offline, which proves
#      the layer holds everything; about 200 MB from Maven Central);
#   3. jlink with the Dockerfile's JRE_MODULES;
#   4. the runtime stage's /deployments layout (lib/, app/, quarkus/, quarkus-run.jar) made read-only;
#   5. the ENTRYPOINT's command line with the Dockerfile's JAVA_OPTS, on the jlink'd runtime, as the
#      image would run it with no GPU and no model: the probes, /v1/models, a streamed chat completion
#      (the chat template needs java.desktop's java.beans), /q/metrics; then SIGTERM, which must drain
#      and exit 0.
#
# It does not check the base images, apt, the CUDA runtime or uid 1001: only a real `docker build` does.
# Needs a JDK 25 with jlink (the one ./mvnw finds), node (for the context list), curl, python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dockerfile="$root/Dockerfile.jvm"

. "$root/.mvn/jdk.sh" 2>/dev/null || true # sets JAVA_HOME to a JDK 25 as ./mvnw does
set +f
jdk=${JAVA_HOME:?no JDK 25 found}
work=$(mktemp -d "${TMPDIR:-/tmp}/jemma-docker-smoke.XXXXXX")
server=
cleanup() { [ -n "$server" ] && kill -9 "$server" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
step() { echo; echo "== $* =="; }

step "1. build context (.dockerignore)"
(cd "$root/tools/lint" && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && node context.js)
mkdir -p "$work/build"
(cd "$root/tools/lint" && node context.js --list) | while IFS= read -r f; do
  mkdir -p "$work/build/$(dirname "$f")"; cp -p "$root/$f" "$work/build/$f"
done
echo "copied to $work/build: $(find "$work/build" -type f | wc -l) files"

step "2. build stage: the Maven build in the context copy"
cd "$work/build"
cmd=$(sed -n 's/^RUN \(\.\/mvnw -B -ntp package.*\)$/\1/p' "$dockerfile")
[ -n "$cmd" ] || { echo "smoke: no 'RUN ./mvnw -B -ntp package' line in Dockerfile.jvm" >&2; exit 1; }
if [ "${GO_OFFLINE:-0}" = 1 ]; then
  # The dependency layer alone, into an empty repository; then the package step offline: the layer
  # must hold everything the build needs (about 200 MB from Maven Central).
  layer=$(sed -n 's/^RUN \(\.\/mvnw .*go-offline.*\)$/\1/p' "$dockerfile")
  echo "$layer  (into an empty repository)"
  eval "$layer -Dmaven.repo.local=$work/m2"
  cmd="$cmd -o -Dmaven.repo.local=$work/m2"
fi
echo "$cmd"
eval "$cmd -q"
ls target/quarkus-app
check=$(sed -n 's/^RUN \(test -s .*\)$/\1/p' "$dockerfile")
if [ -x /usr/local/cuda/bin/nvcc ] || [ -n "${NVCC:-}" ] || command -v nvcc >/dev/null; then
  echo "$check"
  eval "$check" || { echo "smoke: nvcc is here but the kernels were not built" >&2; exit 1; }
  listing=$(unzip -l target/quarkus-app/app/*.jar)
  grep -q 'cuda/jemma_kernels.fatbin' <<<"$listing" \
    || { echo "smoke: the fatbin is not in the application jar" >&2; exit 1; }
  echo "kernels: $(stat -c %s target/classes/cuda/jemma_kernels.fatbin) bytes of fatbin, in the application jar"
else
  echo "no nvcc here: the image's '$check' is not rehearsed"
fi

step "3. jlink (JRE_MODULES of Dockerfile.jvm)"
modules=$(sed -n 's/^ARG JRE_MODULES=//p' "$dockerfile")
[ -n "$modules" ] || { echo "smoke: no ARG JRE_MODULES in Dockerfile.jvm" >&2; exit 1; }
echo "$modules"
"$jdk/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files --compress=zip-6 \
  --output "$work/jre" 2>&1 | grep -v "Using incubator modules" || true
du -sh "$work/jre"

step "4. runtime stage: /deployments, read-only"
mkdir -p "$work/deployments" "$work/tmp"
for part in lib app quarkus quarkus-run.jar; do cp -rp "target/quarkus-app/$part" "$work/deployments/"; done
chmod -R a-w "$work/deployments"
du -sh "$work/deployments"/* | sed 's/^/  /'

step "5. ENTRYPOINT on the jlink'd runtime"
entry=$(sed -n 's/^ENTRYPOINT \["\/bin\/sh", "-c", "\(.*\)"\]$/\1/p' "$dockerfile")
java_opts=$(sed -n 's/^ENV JAVA_OPTS="\(.*\)"$/\1/p' "$dockerfile")
[ -n "$entry" ] && [ -n "$java_opts" ] || { echo "smoke: ENTRYPOINT or ENV JAVA_OPTS not found" >&2; exit 1; }
entry=${entry//\/deployments/$work/deployments}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
echo "$entry"
(cd "$work/tmp" && exec env -i PATH="$work/jre/bin:/usr/bin:/bin" JAVA_OPTS="$java_opts -Djava.io.tmpdir=$work/tmp" \
  QUARKUS_HTTP_HOST=127.0.0.1 QUARKUS_HTTP_PORT="$port" JEMMA_DRAIN_TIMEOUT=20s LANG=C.UTF-8 \
  /bin/sh -c "$entry" >"$work/server.log" 2>&1) &
server=$!
url="http://127.0.0.1:$port"
for i in $(seq 1 240); do
  curl -fsS -o /dev/null "$url/q/health/ready" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "smoke: the server exited" >&2; cat "$work/server.log" >&2; exit 1; }
  [ "$i" = 240 ] && { echo "smoke: not ready in 120 s" >&2; tail -30 "$work/server.log" >&2; exit 1; }
  sleep 0.5
done
for path in /q/health/started /q/health/live /q/health/ready /v1/models /health_generate; do
  printf '  %-20s %s\n' "$path" "$(curl -sS -o /dev/null -w '%{http_code}' "$url$path")"
done
stream=$(curl -sS -N "$url/v1/chat/completions" -H 'Content-Type: application/json' -d '{
  "model": "jemma-embedded", "stream": true, "max_tokens": 16, "ignore_eos": true,
  "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]}')
echo "$stream" | grep -q '"finish_reason":"length"' && echo "$stream" | grep -q '^data: \[DONE\]' \
  || { echo "smoke: the streamed chat completion did not finish:" >&2; echo "$stream" | tail -5 >&2; exit 1; }
echo "  /v1/chat/completions streamed $(echo "$stream" | grep -c '^data: {') events, finish_reason length, [DONE]"
metrics=$(curl -sS "$url/q/metrics" | grep -c '^jemma_')
echo "  /q/metrics           $metrics jemma_ lines"
if grep -E "NoClassDefFoundError|ClassNotFoundException|module .* not found" "$work/server.log"; then
  echo "smoke: a class or module is missing from the jlink'd runtime" >&2; exit 1
fi
kill -TERM "$server"
wait "$server" && status=0 || status=$?
server=
echo "  SIGTERM -> exit status $status"
grep -h "GracefulShutdown" "$work/server.log" | sed 's/^/  /'
[ "$status" = 0 ] || { echo "smoke: exit status $status after SIGTERM" >&2; tail -20 "$work/server.log" >&2; exit 1; }
chmod -R u+w "$work" && rm -rf "$work"
echo
echo "smoke: Dockerfile.jvm rehearsed: context, build, jlink, layout and entrypoint work"
