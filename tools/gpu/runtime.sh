# Sourced by the GPU host scripts (check.sh, bench.sh, profile.sh, tools/bench/qkv_norm.sh), from the repository
# root: checks that tools/gpu/pack.sh's output is there, unpacks the carried Java runtime once, and sets
#   gpu     the build (JEMMA_GPU_DIR, default target/gpu)
#   java    the runtime's java
#   libs    the build's jars as a class path (JCuda, Jackson, ...; without the JUnit console launcher)
gpu=${JEMMA_GPU_DIR:-target/gpu}
for need in .jre/jre25.txz "$gpu/classes/cuda/jemma_kernels.fatbin" "$gpu/lib/jcuda-natives-driver.jar"; do
  [[ -e $need ]] || { echo "missing $need: run tools/gpu/pack.sh locally and carry target/gpu and .jre" >&2; exit 2; }
done
rt=/tmp/jemma-jre
if [[ ! -x $rt/jre25/bin/java ]]; then
  mkdir -p "$rt" && tar xJf .jre/jre25.txz -C "$rt" || { echo "cannot unpack the runtime" >&2; exit 2; }
fi
java=$rt/jre25/bin/java
libs=
for jar in "$gpu"/lib/*.jar; do
  [[ $jar == *junit-platform-console-standalone* ]] || libs="$libs${libs:+:}$jar"
done
