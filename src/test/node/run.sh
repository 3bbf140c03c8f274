#!/usr/bin/env bash
# Runs the openai npm client tests (openai-client.test.mjs) against the packaged server.
# Build first (./mvnw verify or package); this script builds nothing. Exits with the tests' status.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
jar="$root/target/quarkus-app/quarkus-run.jar"
[ -f "$jar" ] || { echo "run.sh: $jar is missing; run ./mvnw package (or verify) first" >&2; exit 2; }

# The JDK 25 that ./mvnw uses: JAVA_HOME if it is one, else the first under the usual places (.mvn/jdk.sh).
release_of() { [ -x "$1/bin/java" ] && sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null || true; }
ok() { v=$(release_of "$1"); [ -n "$v" ] && [ "$v" -ge 25 ]; }
java_home=
if [ -n "${JAVA_HOME-}" ] && ok "$JAVA_HOME"; then
  java_home=$JAVA_HOME
else
  for d in /usr/lib/jvm/*25* /usr/lib/jvm/* /opt/java/* /opt/jdk* "$HOME"/.sdkman/candidates/java/*; do
    if [ -d "$d" ] && ok "$d"; then java_home=$d; break; fi
  done
fi
[ -n "$java_home" ] || { echo "run.sh: no JDK 25 found; set JAVA_HOME" >&2; exit 2; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
  || node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
log=$(mktemp "${TMPDIR:-/tmp}/jemma-node-test.XXXXXX.log")
"$java_home/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" -jar "$jar" >"$log" 2>&1 &
server=$!
stop() {
  if kill -0 "$server" 2>/dev/null; then
    kill "$server" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$server" 2>/dev/null || true
  fi
}
trap stop EXIT INT TERM

url="http://127.0.0.1:$port"
ready() {
  if command -v curl >/dev/null 2>&1; then curl -fsS "$url/q/health/ready" >/dev/null 2>&1
  else node -e 'fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$url/q/health/ready"; fi
}
echo "run.sh: waiting for $url/q/health/ready (server log: $log)"
for i in $(seq 1 600); do
  if ready; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "run.sh: the server exited:" >&2; tail -50 "$log" >&2; exit 1; fi
  if [ "$i" = 600 ]; then echo "run.sh: the server did not get ready:" >&2; tail -50 "$log" >&2; exit 1; fi
  sleep 0.5
done

cd "$here"
npm ci --no-audit --no-fund
status=0
JEMMA_URL=$url node --test openai-client.test.mjs || status=$?
if [ "$status" != 0 ]; then echo "run.sh: tests failed; server log tail:" >&2; tail -30 "$log" >&2; fi
exit "$status"
