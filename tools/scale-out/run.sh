#!/usr/bin/env bash
# Scale-out on one machine: two Jemma servers (the packaged app, two ports on 127.0.0.1) behind nginx,
# a streaming load through nginx, and one backend signalled mid-run:
#
#   phase 1  SIGKILL backend B: its in-flight streams are cut; new requests keep succeeding on A
#            (nginx's passive health check and proxy_next_upstream route around the dead backend).
#   phase 2  (B restarted) SIGTERM backend A: A drains (readiness DOWN, new requests 503, running
#            streams finish), nginx retries the 503s on B: nothing is cut.
#
# Prints, per phase, how many in-flight streams were cut and how many requests succeeded after the
# signal (ScaleOutLoad.java). Bounded in time (about 2 minutes; every wait has a limit). Needs nginx (installs
# the Debian package when missing and apt-get can) and a JDK 25; builds target/quarkus-app if missing.
#
#   tools/scale-out/run.sh                 defaults: 8 clients, 1500 tokens per stream, 25 s per phase
#   CLIENTS=16 MAX_TOKENS=1000 DURATION=30 SIGNAL_AT=10 tools/scale-out/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CLIENTS=${CLIENTS:-8}
MAX_TOKENS=${MAX_TOKENS:-1500}
SECONDS_PER_PHASE=${DURATION:-25}
SIGNAL_AT=${SIGNAL_AT:-8}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-30s}

# ---- tools ----
release_of() { [ -x "$1/bin/java" ] && sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null || true; }
ok() { v=$(release_of "$1"); [ -n "$v" ] && [ "$v" -ge 25 ]; }
java_home=
if [ -n "${JAVA_HOME-}" ] && ok "$JAVA_HOME"; then java_home=$JAVA_HOME; else
  for d in /usr/lib/jvm/*25* /usr/lib/jvm/* /opt/java/* /opt/jdk* "$HOME"/.sdkman/candidates/java/*; do
    if [ -d "$d" ] && ok "$d"; then java_home=$d; break; fi
  done
fi
[ -n "$java_home" ] || { echo "scale-out: no JDK 25 found; set JAVA_HOME" >&2; exit 2; }
java="$java_home/bin/java"

nginx=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)
if [ -z "$nginx" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "scale-out: installing nginx (Debian package)"
    timeout 300 apt-get install -y -q nginx-light >/dev/null 2>&1 \
      || { timeout 300 apt-get update -q >/dev/null && timeout 300 apt-get install -y -q nginx >/dev/null; }
    nginx=$(command -v nginx || echo /usr/sbin/nginx)
  else
    echo "scale-out: nginx is needed (apt-get install nginx)" >&2; exit 2
  fi
fi

jar="$root/target/quarkus-app/quarkus-run.jar"
if [ ! -f "$jar" ]; then
  echo "scale-out: building the application (./mvnw package -DskipTests)"
  (cd "$root" && ./mvnw -B -q package -DskipTests)
fi

# ---- processes ----
work=$(mktemp -d "${TMPDIR:-/tmp}/jemma-scale-out.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
port_a=$(free_port); port_b=$(free_port); port_lb=$(free_port)
pids=()
nginx_pid=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -n "$nginx_pid" ] && kill -9 "$nginx_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

start_backend() { # name port -> sets $started_pid
  "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx1g \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$2" -Djemma.drain-timeout="$DRAIN_TIMEOUT" \
    -jar "$jar" >>"$work/$1.log" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
}
await_ready() { # name port pid
  for _ in $(seq 1 240); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$2/q/health/ready" 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "scale-out: backend $1 exited:" >&2; tail -20 "$work/$1.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "scale-out: backend $1 not ready in 120 s" >&2; tail -20 "$work/$1.log" >&2; exit 1
}

start_backend a "$port_a"; pid_a=$started_pid
start_backend b "$port_b"; pid_b=$started_pid
await_ready a "$port_a" "$pid_a"
await_ready b "$port_b" "$pid_b"

user_line=
[ "$(id -u)" = 0 ] && user_line="user $(id -un) $(id -gn);"
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
# One nginx for the experiment, as this user, everything under $work/nginx.
$user_line
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    log_format upstreams '\$msec \$status "\$request" upstream=\$upstream_addr upstream_status=\$upstream_status '
                         'request_time=\$request_time';
    access_log $work/nginx/access.log upstreams;

    upstream jemma {
        # Passive health checks: one failure (connection refused, timeout, 502/503) takes a backend out
        # for 10 s; then nginx tries it again.
        server 127.0.0.1:$port_a max_fails=1 fail_timeout=10s;
        server 127.0.0.1:$port_b max_fails=1 fail_timeout=10s;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$port_lb;
        location / {
            proxy_pass http://jemma;
            proxy_http_version 1.1;            # keep-alive to the backends, chunked SSE
            proxy_set_header Connection "";
            proxy_buffering off;               # SSE: pass each event on at once
            proxy_cache off;
            proxy_read_timeout 300s;           # long generations
            proxy_connect_timeout 2s;
            # A refused connection, a timeout, or a 502/503 before any response byte reached the client:
            # try the other backend. Jemma answers 503 only to requests it has not started (loading,
            # draining), and completions have no side effects, so POSTs are retried too (non_idempotent).
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_next_upstream_timeout 10s;
            add_header X-Upstream \$upstream_addr always;
        }
    }
}
EOF
"$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 1 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port_lb/q/health/ready" 2>/dev/null && break; sleep 0.2; done
lb="http://127.0.0.1:$port_lb"
echo "scale-out: backends a=127.0.0.1:$port_a (pid $pid_a) b=127.0.0.1:$port_b (pid $pid_b), nginx $lb; logs in $work"
echo "scale-out: load: $CLIENTS clients, $MAX_TOKENS tokens per stream, $SECONDS_PER_PHASE s per phase, signal at $SIGNAL_AT s"

load() { # pid KILL|TERM
  timeout $((SECONDS_PER_PHASE + 180)) "$java" "$here/ScaleOutLoad.java" "$lb" "$CLIENTS" "$MAX_TOKENS" \
    "$SECONDS_PER_PHASE" "$SIGNAL_AT" "$1" "$2"
}

echo
echo "== phase 1: SIGKILL backend b =="
load "$pid_b" KILL | tee "$work/phase1.txt"

echo
echo "scale-out: restarting backend b"
start_backend b "$port_b"; pid_b=$started_pid
await_ready b "$port_b" "$pid_b"
# Warm the new JVM up (JIT) while nginx's fail_timeout runs out (b is tried again after 10 s).
warm_until=$((SECONDS + 11))
while [ "$SECONDS" -lt "$warm_until" ]; do
  for _ in 1 2 3 4; do
    curl -fsS -o /dev/null "http://127.0.0.1:$port_b/v1/chat/completions" -H 'Content-Type: application/json' \
      -d '{"model": "jemma-embedded", "max_tokens": 200, "messages": [{"role": "user", "content": "warm up"}]}' &
  done
  wait_for_warm=$(jobs -p | grep -v -e "^$nginx_pid\$" -e "^$pid_a\$" -e "^$pid_b\$" || true)
  for j in $wait_for_warm; do wait "$j" 2>/dev/null || true; done
done

echo
echo "== phase 2: SIGTERM backend a (drain, jemma.drain-timeout=$DRAIN_TIMEOUT) =="
load "$pid_a" TERM | tee "$work/phase2.txt"
for _ in $(seq 1 120); do kill -0 "$pid_a" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$pid_a" 2>/dev/null; then status_a="still running"; else wait "$pid_a" && status_a=0 || status_a=$?; fi
echo "backend a after SIGTERM: exit status $status_a"
grep -h "GracefulShutdown" "$work/a.log" | sed 's/^/  a: /' || true
retried=$(grep -c 'upstream=[0-9.:]*, ' "$work/nginx/access.log" || true)
echo "nginx: $(wc -l <"$work/nginx/access.log") requests logged, $retried passed on to the other backend (proxy_next_upstream)"

echo
echo "== summary =="
grep -h '^RESULT' "$work/phase1.txt" "$work/phase2.txt"
