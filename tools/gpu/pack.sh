#!/usr/bin/env bash
# Prepares what the GPU host needs to run the gpu-tagged tests (tools/gpu/check.sh), on a machine with
# JDK 25 and nvcc but no GPU. Run from the repository root:
#
#   tools/gpu/pack.sh            the kernel and engine GPU tests
#   tools/gpu/pack.sh --eval     also issue 9's eval gate (io.jemma.engine.EmbeddedEvalGpuTest): the gate's test classes, and Jinjava and the
#                                Prometheus registry with their jars (about 7 MB); the test set it reads is
#                                src/test/resources/eval/test.jsonl, tracked, so already in the checkout there
#
# Builds the classes, test classes and the kernel fatbin, then writes target/gpu/:
#   classes/       main classes and resources (the fatbin at cuda/jemma_kernels.fatbin), without the
#                  embedded default model and its assistant
#   test-classes/  the io.jemma.backend.cuda tests, plus what the whole-model GPU test reads:
#                  io.jemma.model.GoldenCheckpoint, Bf16RoundingBackend, RoutingRecorder and
#                  ForwardingWeightSource, the golden checkpoints golden/tiny-31b and golden/tiny-moe
#                  (< 1 MB each), the assistant golden/tiny-31b-assistant, and
#                  io.jemma.engine.EngineGpuTest and SpeculativeEngineGpuTest
#   prefill-bench  tools/gpu/prefill_bench.cu built: the sm_90a prefill kernels timed and checked without Java
#   lib/           jcuda-12.6.0.jar, jcuda-natives-driver.jar (JCuda's natives jar cut down to the
#                  driver library: 0.5 MB instead of 9.5), junit-platform-console-standalone.jar,
#                  the Jackson jars (the whole-model test reads config.json and safetensors headers),
#                  Mutiny, Micrometer and JBoss Logging (the engine GPU test runs the real scheduler)
# and makes sure .jre/jre25.txz (the packed Java 25 runtime) exists. Carry `target/gpu` and `.jre`.
set -euo pipefail
eval_gate=0
for arg in "$@"; do
  case $arg in
    --eval) eval_gate=1 ;;
    *) echo "usage: tools/gpu/pack.sh [--eval]" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

[[ -x /usr/local/cuda/bin/nvcc || -n ${NVCC:-} || -n ${CUDA_HOME:-} ]] || command -v nvcc >/dev/null \
  || { echo "no nvcc: the GPU host cannot build kernels, so they must be built here" >&2; exit 1; }

rm -f target/gpu/lib/*.jar target/gpu-eval-lib/*.jar   # no stale versions on the GPU host's class path
./mvnw -q -Pgpu-pack -DskipTests process-test-classes
[[ -f target/classes/cuda/jemma_kernels.fatbin ]] || { echo "the fatbin was not built" >&2; exit 1; }

jdk=${JDK25_HOME:-}
for d in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-25-openjdk-amd64 /usr/lib/jvm/*25*; do
  [[ -n $jdk ]] && break
  [[ -n $d && -x $d/bin/jar && $("$d/bin/java" -version 2>&1) == *'"25'* ]] && jdk=$d
done
[[ -n $jdk ]] || { echo "no JDK 25 found (set JDK25_HOME)" >&2; exit 1; }

gpu=target/gpu
rm -rf "$gpu/classes" "$gpu/test-classes" "$gpu/natives"
mkdir -p "$gpu/classes" "$gpu/test-classes/io/jemma/backend"
tar cf - -C target/classes --exclude=./embedded-model --exclude=./embedded-model-assistant . | tar xf - -C "$gpu/classes"
# The H200 needs only the sm_90a machine code: a fatbin without the sm_80 code and PTX (about half the bytes of
# the 64 MiB that may travel), rebuilt only when a kernel source changed.
JEMMA_KERNEL_ARCHS=sm_90a src-native-kernels/build.sh target/gpu-fatbin/jemma_kernels.fatbin target/gpu-fatbin/build
cp target/gpu-fatbin/jemma_kernels.fatbin "$gpu/classes/cuda/jemma_kernels.fatbin"
# The prefill kernel bench without Java (tools/gpu/prefill-bench.sh, about 2 MB), rebuilt when a kernel or the bench changed.
if [[ ! -x $gpu/prefill-bench || -n $(find src-native-kernels tools/gpu/prefill_bench.cu -name '*.cu*' -newer "$gpu/prefill-bench") ]]; then
  tools/gpu/prefill-bench.sh --build
fi
cp -r target/test-classes/io/jemma/backend/cuda "$gpu/test-classes/io/jemma/backend/"
cp target/test-classes/io/jemma/backend/{Forwarding,Delegating}Backend*.class "$gpu/test-classes/io/jemma/backend/"   # under Bf16RoundingBackend, RoutingRecorder
mkdir -p "$gpu/test-classes/io/jemma/model" "$gpu/test-classes/golden"
cp target/test-classes/io/jemma/model/GoldenCheckpoint*.class target/test-classes/io/jemma/model/Bf16RoundingBackend*.class \
  target/test-classes/io/jemma/model/RoutingRecorder.class target/test-classes/io/jemma/model/RoutingRecorder\$*.class \
  target/test-classes/io/jemma/model/ForwardingWeightSource.class "$gpu/test-classes/io/jemma/model/"
cp -r target/test-classes/golden/tiny-31b target/test-classes/golden/tiny-31b-assistant target/test-classes/golden/tiny-moe "$gpu/test-classes/golden/"
cp -r target/test-classes/dummy-xqa-512 "$gpu/test-classes/"  # SpeculativeEngineGpuTest's real-head-dims model
mkdir -p "$gpu/test-classes/io/jemma/engine"
cp target/test-classes/io/jemma/engine/EngineGpuTest*.class target/test-classes/io/jemma/engine/SpeculativeEngineGpuTest*.class \
  "$gpu/test-classes/io/jemma/engine/"
if (( eval_gate )); then
  # The embedded model and its assistant, the gate and its shared helper (and the CPU speculation gate, which
  # runs on the same class path: a check of the pack without a GPU), the chat template's and metrics' jars.
  # The model itself is not copied: check.sh puts the checkout's src/main/resources last on the class path
  # (the tracked model travels anyway; a second copy would break the 64 MiB cap).
  cp target/test-classes/io/jemma/engine/{EmbeddedEvalGpuTest,EmbeddedGate,EmbeddedSpeculationGateTest}*.class \
    "$gpu/test-classes/io/jemma/engine/"
  cp target/gpu-eval-lib/*.jar "$gpu/lib/"
fi

# JCuda's natives jar holds four libraries (24 MB of PTX compiler among them); the driver API needs one.
natives=$(ls "$gpu"/lib/jcuda-natives-*-linux-x86_64.jar)
mkdir -p "$gpu/natives"
(cd "$gpu/natives" && "$jdk/bin/jar" xf "$root/$natives" 'lib/libJCudaDriver-12.6.0-linux-x86_64.so')
"$jdk/bin/jar" cf "$gpu/lib/jcuda-natives-driver.jar" -C "$gpu/natives" lib
rm -rf "$gpu/natives" "$natives"

tools/gpu/jre.sh .jre          # the packed Java 25 runtime (rebuilt only when its module list changed)

du -sh "$gpu" .jre
echo "carry: target/gpu .jre   ($(du -cb "$gpu" .jre | tail -1 | awk '{printf "%.1f MB", $1 / 1e6}') in all)"
