#!/usr/bin/env bash
# Packs the Java 25 runtime the GPU host runs Jemma's GPU tests and benchmarks with (it has no JDK):
# .jre/jre25.txz, a jlink image of the local JDK 25, xz-compressed (everything that travels to the GPU host
# is capped at 64 MiB). The modules are ../shared/tools/device-java.sh's (what a Quarkus application, JCuda
# and java.lang.foreign need) plus java.desktop, whose java.beans the chat template engine (Jinjava) needs
# for issue 9's eval gate. pack.sh calls this when .jre/modules does not list the same modules.
#
#   tools/gpu/jre.sh [OUT_DIR]     (default .jre)
set -euo pipefail
out=${1:-.jre}
modules=java.base,java.logging,java.naming,java.management,java.sql,java.xml,java.net.http,java.instrument,java.compiler,java.security.jgss,jdk.unsupported,jdk.management,jdk.crypto.ec,jdk.zipfs,jdk.incubator.vector,java.desktop
if [[ -f $out/jre25.txz && "$(cat "$out/modules" 2>/dev/null)" == "$modules" ]]; then
  exit 0
fi
jdk=${JDK25_HOME:-}
for d in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-25-openjdk-amd64 /usr/lib/jvm/*25*; do
  [[ -n $jdk ]] && break
  [[ -n $d && -x $d/bin/jlink && $("$d/bin/java" -version 2>&1) == *'"25'* ]] && jdk=$d
done
[[ -n $jdk ]] || { echo "no JDK 25 with jlink found (set JDK25_HOME)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$jdk/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
  --compress=zip-0 --output "$work/jre25" 2>&1 | grep -v 'incubator modules' || true
mkdir -p "$out"
tar cf - -C "$work" jre25 | xz -9 -T0 > "$out/jre25.txz"
echo "$modules" > "$out/modules"
echo "wrote $out/jre25.txz ($(du -h "$out/jre25.txz" | cut -f1)) from $jdk"
