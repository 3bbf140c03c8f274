package io.jemma.bench;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import io.jemma.backend.cpu.Matmul;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The CPU matmul against the machine's own limits, all measured in one run:
 * <ul>
 *   <li>{@code fmaPeak}: register-resident FloatVector FMAs on every core (GFLOP/s);</li>
 *   <li>{@code bandwidthCopy}: MemorySegment.copy far beyond the caches on every core, bytes read + written
 *       (GB/s), and {@code bandwidthRead}: a vector sum over such a buffer (4 streams per core), bytes read
 *       (GB/s);</li>
 *   <li>{@code matmulPrefill}: many tokens, compute-bound (GFLOP/s, against the FMA peak);</li>
 *   <li>{@code matmulDecode}: 1 and 4 tokens over 32 MB of bf16 weights, memory-bound (GB/s of weights read,
 *       against both bandwidths).</li>
 * </ul>
 * JMH reports the rates as the {@code gflop} / {@code gbyte} secondary results; after each matmul trial a summary
 * with the ratios is printed (the last one is complete) and saved to {@code target/matmul-bench/summary.txt}.
 * JMH runs benchmarks in alphabetical order, which puts the reference figures first.
 *
 * <p>Run: {@code ./mvnw -B -q -Pbench test-compile exec:exec -Dbench=MatmulBenchmark}
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 4, time = 1)
public class MatmulBenchmark {

    static final String FMA_PEAK = "fmaPeak";
    static final String COPY = "bandwidthCopy";
    static final String READ = "bandwidthRead";
    static final String PREFILL = "matmulPrefill";
    static final String DECODE = "matmulDecode";

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Bytes that the bandwidth benchmarks stream per run, split over the threads: far beyond any cache. */
    private static final long STREAM_BYTES = 512L << 20;

    // ---- reference figures ----

    private static final int FMA_STEPS = 1 << 20;

    /**
     * 12 independent accumulators: an FMA has 4 cycles of latency and up to 2 issue per cycle, so at least 8
     * chains are needed to keep both pipes busy; 12 leave margin and still fit the registers.
     */
    @Benchmark
    @Threads(Threads.MAX)
    public float fmaPeak(Meter.Flops meter) {
        FloatVector m = FloatVector.broadcast(F, 0.999f), c = FloatVector.broadcast(F, 1e-3f);
        FloatVector a0 = FloatVector.broadcast(F, 0.1f), a1 = a0.add(0.01f), a2 = a0.add(0.02f), a3 = a0.add(0.03f);
        FloatVector a4 = a0.add(0.04f), a5 = a0.add(0.05f), a6 = a0.add(0.06f), a7 = a0.add(0.07f);
        FloatVector a8 = a0.add(0.08f), a9 = a0.add(0.09f), a10 = a0.add(0.10f), a11 = a0.add(0.11f);
        for (int i = 0; i < FMA_STEPS; i++) {
            a0 = a0.fma(m, c); a1 = a1.fma(m, c); a2 = a2.fma(m, c); a3 = a3.fma(m, c);
            a4 = a4.fma(m, c); a5 = a5.fma(m, c); a6 = a6.fma(m, c); a7 = a7.fma(m, c);
            a8 = a8.fma(m, c); a9 = a9.fma(m, c); a10 = a10.fma(m, c); a11 = a11.fma(m, c);
        }
        meter.add(2.0 * 12 * F.length() * FMA_STEPS * 1e-9);
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11)
                .reduceLanes(VectorOperators.ADD);
    }

    /** One thread's share of the streaming buffers, in native memory like the mapped weights. */
    @State(Scope.Thread)
    public static class Stream {
        Arena arena;
        MemorySegment source;
        MemorySegment target;

        @Setup(Level.Trial)
        public void allocate(org.openjdk.jmh.infra.BenchmarkParams params) {
            if (params.getBenchmark().endsWith(COPY)) {
                Figures.reset();  // the first benchmark of a run
            }
            long bytes = STREAM_BYTES / params.getThreads();
            arena = Arena.ofShared();
            source = arena.allocate(bytes, 4096);  // allocate() zeroes: all pages are touched before timing
            source.fill((byte) 1);
            target = params.getBenchmark().endsWith(COPY) ? arena.allocate(bytes, 4096) : null;
        }

        @TearDown(Level.Trial)
        public void free() {
            arena.close();
        }
    }

    @Benchmark
    @Threads(Threads.MAX)
    public void bandwidthCopy(Stream s, Meter.Bytes meter) {
        MemorySegment.copy(s.source, 0, s.target, 0, s.source.byteSize());
        meter.add(2.0 * s.source.byteSize() * 1e-9);
    }

    /**
     * A vector sum over the thread's buffer, read as 4 sequential streams a quarter of the buffer apart: one stream
     * per core leaves bandwidth unused (the hardware prefetcher keeps too few lines in flight), and the decode
     * kernels read 4 such streams per thread, so this is the fair upper bound for them.
     */
    @Benchmark
    @Threads(Threads.MAX)
    public float bandwidthRead(Stream s, Meter.Bytes meter) {
        MemorySegment src = s.source;
        long step = 4L * F.length();
        long quarter = src.byteSize() / 4 / step * step;
        long b1 = quarter, b2 = 2 * quarter, b3 = 3 * quarter;
        FloatVector c0 = FloatVector.zero(F), c1 = c0, c2 = c0, c3 = c0;
        for (long i = 0; i < quarter; i += step) {
            c0 = c0.add(FloatVector.fromMemorySegment(F, src, i, ByteOrder.LITTLE_ENDIAN));
            c1 = c1.add(FloatVector.fromMemorySegment(F, src, b1 + i, ByteOrder.LITTLE_ENDIAN));
            c2 = c2.add(FloatVector.fromMemorySegment(F, src, b2 + i, ByteOrder.LITTLE_ENDIAN));
            c3 = c3.add(FloatVector.fromMemorySegment(F, src, b3 + i, ByteOrder.LITTLE_ENDIAN));
        }
        meter.add(4 * quarter * 1e-9);
        return c0.add(c1).add(c2).add(c3).reduceLanes(VectorOperators.ADD);
    }

    // ---- matmul ----

    /** Random bf16 weights [rows, cols] in native memory. */
    static HostTensor bf16Weights(Arena arena, int rows, int cols, long seed) {
        MemorySegment data = arena.allocate(2L * rows * cols, 64);
        SplittableRandom random = new SplittableRandom(seed);
        for (long i = 0; i < (long) rows * cols; i++) {
            data.set(SHORT_LE, 2 * i, DType.floatToBf16((float) (random.nextDouble() - 0.5) * 0.1f));
        }
        return new HostTensor("w", DType.BF16, new long[] {rows, cols}, data);
    }

    static float[] activations(int n, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (random.nextDouble() * 2 - 1);
        }
        return x;
    }

    /** A matmul problem: W [outDim, inDim] given as "outDimxinDim". */
    public abstract static class Problem {
        Matmul matmul;
        Arena arena;
        int outDim;
        int inDim;
        float[] x;
        float[] y;

        void setUp(String shape, int tokens) {
            String[] dims = shape.split("x");
            outDim = Integer.parseInt(dims[0]);
            inDim = Integer.parseInt(dims[1]);
            matmul = new Matmul();
            arena = Arena.ofShared();
            x = activations(tokens * inDim, 1);
            y = new float[tokens * outDim];
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            matmul.close();
            arena.close();
        }
    }

    @State(Scope.Benchmark)
    public static class PrefillProblem extends Problem {
        @Param({"128", "512"})
        int tokens;
        @Param({"2048x2048", "4096x1024"})
        String shape;
        HostTensor w;

        @Setup(Level.Trial)
        public void setUp() {
            setUp(shape, tokens);
            w = bf16Weights(arena, outDim, inDim, 2);
        }
    }

    @Benchmark
    public float[] matmulPrefill(PrefillProblem p, Meter.Flops meter) {
        p.matmul.matmul(p.x, p.tokens, p.inDim, p.w, p.y);
        meter.add(2.0 * p.tokens * p.outDim * p.inDim * 1e-9);
        return p.y;
    }

    /**
     * Four distinct weight tensors of 32 MB, used in turn: one alone would partly stay in the 32 MB L3 between
     * calls and flatter the figure; 128 MB in rotation are read from memory.
     */
    @State(Scope.Benchmark)
    public static class DecodeProblem extends Problem {
        static final int COPIES = 4;

        @Param({"1", "4"})
        int tokens;
        @Param({"8192x2048", "2048x8192"})
        String shape;
        HostTensor[] w = new HostTensor[COPIES];
        int next;

        @Setup(Level.Trial)
        public void setUp() {
            setUp(shape, tokens);
            for (int i = 0; i < COPIES; i++) {
                w[i] = bf16Weights(arena, outDim, inDim, 10 + i);
            }
        }

        HostTensor nextWeights() {
            next = (next + 1) % COPIES;
            return w[next];
        }
    }

    @Benchmark
    public float[] matmulDecode(DecodeProblem p, Meter.Bytes meter) {
        HostTensor w = p.nextWeights();
        p.matmul.matmul(p.x, p.tokens, p.inDim, w, p.y);
        meter.add(w.data().byteSize() * 1e-9);
        return p.y;
    }
}
