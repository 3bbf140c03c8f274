package io.jemma.backend.cuda;

import static org.junit.jupiter.api.Assertions.fail;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import io.jemma.backend.cpu.CpuBackend;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/**
 * What the GPU tests share: one CUDA backend and one CPU backend per JVM (creating a context costs
 * about a second), fresh random inputs for every check (seeded from the clock; the seed is in every
 * failure message), checkpoint-like host tensors, and the relative-error check against the CPU
 * reference that records each result in the {@link GpuReport}.
 */
final class GpuTests {
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** fp32 kernels against the fp32 CPU: only summation order and libm rounding differ. */
    static final double FP32_BOUND = 1e-5;
    /** GEMMs: the activation operand is rounded to bf16 (relative 2^-9 per element). */
    static final double BF16_BOUND = 1e-2;

    private static CudaBackend gpu;
    private static CpuBackend cpu;

    private GpuTests() {
    }

    static synchronized CudaBackend gpu() {
        if (gpu == null) {
            // The tests run on the GPU host only: there, an unavailable backend is a failure, not a skip.
            CudaAvailability a = CudaBackend.available();
            if (!a.available()) {
                fail(a.toString());
            }
            System.setProperty("jemma.cuda.debugSync", "true");
            gpu = new CudaBackend();
            System.out.println("GPU tests on " + a.detail());
        }
        return gpu;
    }

    static synchronized CpuBackend cpu() {
        if (cpu == null) {
            cpu = new CpuBackend();
        }
        return cpu;
    }

    /**
     * Whether the sm_90a alternative {@code suffix} is wanted in this run: -Djemma.test.sm90-suffixes=_split,_plain
     * names the only ones (a short device call); unset, every one.
     */
    static boolean sm90SuffixSelected(String suffix) {
        String only = System.getProperty("jemma.test.sm90-suffixes", "");
        return only.isEmpty() || java.util.List.of(only.split(",")).contains(suffix);
    }

    /** Fresh inputs for every run; the seed is printed so that a failure can be replayed (-Djemma.gpu.seed). */
    static SplittableRandom random(String test) {
        long seed = Long.getLong("jemma.gpu.seed", System.nanoTime());
        System.out.println(test + ": seed " + seed);
        return new SplittableRandom(seed);
    }

    /** n values ~ U(lo, hi). */
    static float[] uniform(SplittableRandom r, int n, double lo, double hi) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return v;
    }

    /** A checkpoint-like tensor of the given dtype holding {@code values} (rounded to the dtype). */
    static HostTensor tensor(String name, DType dtype, long[] shape, float[] values) {
        long bytes = (long) values.length * dtype.bytes();
        MemorySegment data = Arena.ofAuto().allocate(bytes, 64);
        for (int i = 0; i < values.length; i++) {
            long at = (long) i * dtype.bytes();
            switch (dtype) {
                case BF16 -> data.set(SHORT_LE, at, DType.floatToBf16(values[i]));
                case F16 -> data.set(SHORT_LE, at, Float.floatToFloat16(values[i]));
                case F32 -> data.set(FLOAT_LE, at, values[i]);
            }
        }
        return new HostTensor(name, dtype, shape, data);
    }

    /**
     * A random bf16 matrix [rows, cols] ~ U(-scale, scale), written straight into native memory (the big
     * GEMM weights would not fit a float[] comfortably).
     */
    static HostTensor randomBf16(SplittableRandom r, String name, long rows, long cols, double scale) {
        long n = rows * cols;
        MemorySegment data = Arena.ofAuto().allocate(n * 2, 64);
        for (long i = 0; i < n; i++) {
            data.set(SHORT_LE, i * 2, DType.floatToBf16((float) ((r.nextDouble() * 2 - 1) * scale)));
        }
        return new HostTensor(name, DType.BF16, new long[] {rows, cols}, data);
    }

    /** ||gpu - cpu|| / ||cpu|| in double; NaN or infinity anywhere in gpu (where cpu is finite) gives +inf. */
    static double relativeError(float[] gpu, float[] cpu) {
        if (gpu.length != cpu.length) {
            throw new IllegalArgumentException(gpu.length + " vs " + cpu.length + " values");
        }
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < gpu.length; i++) {
            if (!Float.isFinite(gpu[i]) && Float.isFinite(cpu[i])) {
                return Double.POSITIVE_INFINITY;
            }
            double d = (double) gpu[i] - cpu[i];
            diff += d * d;
            norm += (double) cpu[i] * cpu[i];
        }
        if (norm == 0) {
            return diff == 0 ? 0 : Double.POSITIVE_INFINITY;
        }
        return Math.sqrt(diff / norm);
    }

    /** Records the comparison and fails the test when it is over the bound. */
    static void assertClose(String test, String what, float[] gpu, float[] cpu, double bound) {
        double e = relativeError(gpu, cpu);
        boolean pass = e <= bound;
        GpuReport.check(test, what, e, bound, pass);
        if (!pass) {
            int firstBad = -1;
            for (int i = 0; i < gpu.length && firstBad < 0; i++) {
                if (!(Math.abs(gpu[i] - cpu[i]) <= Math.max(1e-3, 1e-2 * Math.abs(cpu[i])))) {
                    firstBad = i;
                }
            }
            fail(test + " " + what + ": relative error " + e + " > " + bound
                    + (firstBad >= 0 ? " (first far element " + firstBad + ": gpu " + gpu[firstBad] + ", cpu "
                    + cpu[firstBad] + ")" : ""));
        }
    }

    /** The same values as a CPU tensor and as a CUDA tensor. */
    record Pair(io.jemma.backend.Tensor cpu, io.jemma.backend.Tensor gpu) {
    }

    static Pair pair(float[] values, int rows, int cols) {
        return new Pair(cpu().fromHost(values, rows, cols), gpu().fromHost(values, rows, cols));
    }

    /**
     * The values rounded to bf16, as a CPU tensor and as a projection output whose GEMM stored only its bf16 copy
     * (CudaBackend.allocateBf16Output at more than 4 rows, what allocateMatmulOutput gives prefill chunks by default):
     * the copy holds the values, the fp32 memory NaN, so a kernel that reads fp32 instead of the copy fails.
     */
    static Pair bf16OnlyPair(float[] values, int rows, int cols) {
        float[] rounded = values.clone();
        for (int i = 0; i < rounded.length; i++) {
            rounded[i] = io.jemma.backend.DType.BF16.round(rounded[i]);
        }
        CudaTensor t = gpu().allocateBf16Output(rows, cols);
        if (t.operand() == null || !t.operand().gemmOutput()) {
            throw new IllegalArgumentException("[" + rows + ", " + cols + "] gets no bf16 GEMM output");
        }
        CudaTensor src = (CudaTensor) gpu().fromHost(rounded, rows, cols);
        new ActivationKernels(gpu().context()).toBf16(src, t.operand().address());    // exact: bf16 values
        gpu().fill(t, Float.NaN);
        t.operand().currentOnly();
        return new Pair(cpu().fromHost(rounded, rows, cols), t);
    }

    /** A GPU output tensor poisoned with NaN, so that any element the kernel fails to write shows. */
    static io.jemma.backend.Tensor poisoned(int rows, int cols) {
        io.jemma.backend.Tensor t = gpu().allocate(rows, cols);
        gpu().fill(t, Float.NaN);
        return t;
    }
}
