# Sourced by ./mvnw: makes sure Maven runs on the JDK this project needs (release in .mvn/jdk-release).
set +f  # mvnw runs with globbing off; we need it for the JDK search below
# Machines often have an older default `java` (17 here) beside a JDK 25 under /usr/lib/jvm; rather than
# asking every user to export JAVA_HOME, pick the first JDK of the required release we can find.
jemma_required=$(cat "$(dirname "$0")/.mvn/jdk-release" 2>/dev/null || echo 25)
jemma_release_of() { # prints the feature release of the JDK at $1, or nothing
  [ -x "$1/bin/javac" ] || return 0
  sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null
}
jemma_ok() { v=$(jemma_release_of "$1"); [ -n "$v" ] && [ "$v" -ge "$jemma_required" ]; }
if [ -n "${JAVA_HOME-}" ] && jemma_ok "$JAVA_HOME"; then
  :
else
  jemma_found=
  jemma_java=$(command -v javac 2>/dev/null || true)
  if [ -n "$jemma_java" ]; then
    jemma_home=$(dirname "$(dirname "$(readlink -f "$jemma_java")")")
    jemma_ok "$jemma_home" && jemma_found=$jemma_home
  fi
  if [ -z "$jemma_found" ]; then
    for d in /usr/lib/jvm/*"$jemma_required"* /usr/lib/jvm/* /opt/java/* /opt/jdk* "$HOME"/.sdkman/candidates/java/*; do
      if [ -d "$d" ] && jemma_ok "$d"; then jemma_found=$d; break; fi
    done
  fi
  if [ -z "$jemma_found" ]; then
    echo "Jemma needs a JDK $jemma_required or newer. Install one (for example Temurin $jemma_required) or set JAVA_HOME to it." >&2
    exit 1
  fi
  JAVA_HOME=$jemma_found
  export JAVA_HOME
fi
set -f
