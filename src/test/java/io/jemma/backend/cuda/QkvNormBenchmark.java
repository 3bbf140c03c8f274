package io.jemma.backend.cuda;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import io.jemma.backend.QkvNormMode;
import io.jemma.model.config.RopeSpec;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The fused Gemma QKV norm (qkv_norm.cu: per (token, head) rms, weight, RoPE and the bf16 KV-cache write in
 * one launch) against the unfused sequence a framework runs for the same layer: separate RMSNorms of q, k
 * and v (norms.cu, one launch each; k_eq_v: v = rms(raw k) first, then k's weighted norm), RoPE on q and
 * on k (rope.cu, one launch each) and the KV-cache write (paged_kv.cu's jemma_kv_write_slots). Q_ONLY (KV-shared
 * layers): q norm + RoPE against the fused q-only pass; no cache write on either side.
 *
 * <p>Per layer at Gemma 4 31B's shapes (sliding: 32 q / 16 kv heads x 256; full, k_eq_v: 32 / 4 x 512),
 * 1 to 32 tokens at positions around 2000, timed with CUDA events: the median over 30 runs of
 * {@value #LAYERS} consecutive layers' worth of launches, per layer; eager (each launch from the host:
 * at these sizes the host's launch cost dominates) and replayed from one CUDA graph holding the
 * {@value #LAYERS} repetitions (what the kernels themselves take). All inputs are device-resident
 * (positions, frequencies, slots), so neither side pays an upload. Before timing, both sequences run on
 * the same inputs and their q, k, v and cache rows are compared.
 *
 * <p>Run on the GPU host: {@code bash tools/bench/qkv_norm.sh} (prints the table; TSV in $OUT).
 */
public final class QkvNormBenchmark {
    private static final int LAYERS = 20;
    private static final int[] TOKENS = {1, 2, 4, 8, 16, 32};
    private static final float EPS = 1e-6f;
    private static final int CACHE_ROWS = 4096;
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private record Case(QkvNormMode mode, int heads, int kvHeads, int headDim, boolean sliding) {
        String layout() {
            return heads + (mode == QkvNormMode.Q_ONLY ? "" : "/" + kvHeads) + " x " + headDim
                    + (sliding ? " sliding" : " full");
        }

        float[] invFreq() {
            return sliding ? RopeSpec.defaultRope(10_000).inverseFrequencies(headDim)
                    : RopeSpec.proportional(1_000_000, 0.25).inverseFrequencies(headDim);
        }
    }

    private static final Case[] CASES = {
        new Case(QkvNormMode.QKV, 32, 16, 256, true),
        new Case(QkvNormMode.QK_EQ_V, 32, 4, 512, false),
        new Case(QkvNormMode.Q_ONLY, 32, 0, 256, true),
        new Case(QkvNormMode.Q_ONLY, 32, 0, 512, false),
    };

    /** One layer's buffers: q, k, v activations, norm weights, device-resident positions / frequencies / slots, caches. */
    private static final class Layer {
        final Case c;
        final int tokens;
        final CudaTensor q, k, v;
        final CudaWeight qw, kw;
        final DeviceBuffer positions, invFreq, slots, kCache, vCache;
        final float[] invFreqHost;
        private QkvNormKernels kernels;

        Layer(CudaBackend gpu, Case c, int tokens, SplittableRandom r) {
            this.c = c;
            this.tokens = tokens;
            int hd = c.headDim();
            q = (CudaTensor) gpu.fromHost(uniform(r, tokens * c.heads() * hd), tokens, c.heads() * hd);
            int kvw = Math.max(1, c.kvHeads() * hd);
            k = (CudaTensor) gpu.fromHost(uniform(r, tokens * kvw), tokens, kvw);
            v = (CudaTensor) gpu.fromHost(uniform(r, tokens * kvw), tokens, kvw);
            qw = (CudaWeight) gpu.load(vector(r, "q_norm", hd));
            kw = (CudaWeight) gpu.load(vector(r, "k_norm", hd));
            int[] pos = new int[tokens];
            int[] slot = new int[tokens];
            for (int i = 0; i < tokens; i++) {
                pos[i] = 2000 + i;
                slot[i] = 3 * i + 1;
            }
            positions = ints(gpu, pos);
            invFreqHost = c.invFreq();
            invFreq = floats(gpu, invFreqHost);
            slots = ints(gpu, slot);
            long cacheBytes = (long) CACHE_ROWS * kvw * 2;
            kCache = gpu.deviceBuffer(cacheBytes);
            vCache = gpu.deviceBuffer(cacheBytes);
            gpu.context().fill32(kCache, 0, cacheBytes / 4, 0);
            gpu.context().fill32(vCache, 0, cacheBytes / 4, 0);
        }

        /** A copy with the same inputs and its own outputs (for the correctness comparison). */
        Layer copy(CudaBackend gpu) {
            return new Layer(this, gpu);
        }

        private Layer(Layer o, CudaBackend gpu) {
            c = o.c;
            tokens = o.tokens;
            q = dup(gpu, o.q);
            k = dup(gpu, o.k);
            v = dup(gpu, o.v);
            qw = o.qw;
            kw = o.kw;
            positions = o.positions;
            invFreq = o.invFreq;
            invFreqHost = o.invFreqHost;
            slots = o.slots;
            long cacheBytes = o.kCache.bytes();
            kCache = gpu.deviceBuffer(cacheBytes);
            vCache = gpu.deviceBuffer(cacheBytes);
            gpu.context().fill32(kCache, 0, cacheBytes / 4, 0);
            gpu.context().fill32(vCache, 0, cacheBytes / 4, 0);
        }

        /** The fused pass as the model launches it (QkvNormKernels): one launch, with the cache write except in Q_ONLY. */
        void fused(CudaContext ctx) {
            boolean kv = c.mode() != QkvNormMode.Q_ONLY;
            if (kernels == null) {
                kernels = new QkvNormKernels(ctx);     // uploads the frequencies on the first (eager) call
            }
            kernels.applyResident(c.mode(), q, kv ? k : null, kv ? v : null, c.headDim(), qw,
                    kv ? kw : null, EPS, positions.address(), invFreqHost, kv ? slots.address() : 0,
                    kv ? kCache : null, kv ? vCache : null);
        }

        /** The unfused sequence: norms, RoPE on q and k, cache write, each its own launch. */
        void unfused(CudaContext ctx, NormKernels norms) {
            int hd = c.headDim();
            switch (c.mode()) {
                case QKV -> {
                    norms.rmsNorm(q, hd, qw, EPS, q);
                    norms.rmsNorm(k, hd, kw, EPS, k);
                    norms.rmsNorm(v, hd, null, EPS, v);
                }
                case QK_EQ_V -> {
                    norms.rmsNorm(k, hd, null, EPS, v);     // v = rms(raw k), before k is normalized in place
                    norms.rmsNorm(k, hd, kw, EPS, k);
                    norms.rmsNorm(q, hd, qw, EPS, q);
                }
                case Q_ONLY -> norms.rmsNorm(q, hd, qw, EPS, q);
            }
            rope(ctx, q, c.heads());
            if (c.mode() != QkvNormMode.Q_ONLY) {
                rope(ctx, k, c.kvHeads());
                ctx.launch("jemma_kv_write_slots", tokens, 1, 256, new KernelArgs()
                        .ptr(k.address()).i64(k.rowStride()).ptr(v.address()).i64(v.rowStride())
                        .i32(c.kvHeads() * hd).ptr(slots.address()).ptr(kCache.address()).ptr(vCache.address()));
            }
        }

        private void rope(CudaContext ctx, CudaTensor x, int heads) {
            ctx.launch("jemma_rope", tokens, heads, Grid.reductionThreads(c.headDim() / 2, 1024), new KernelArgs()
                    .ptr(x.address()).i64(x.rowStride()).i32(c.headDim()).ptr(positions.address())
                    .ptr(invFreq.address()));
        }
    }

    private record Row(Case c, int tokens, double unfusedEager, double fusedEager, double unfusedGraph,
                       double fusedGraph, double maxError) {
    }

    public static void main(String[] args) {
        CudaBackend gpu = new CudaBackend();
        CudaContext ctx = gpu.context();
        ctx.debugSync(false);
        NormKernels norms = new NormKernels(ctx);
        SplittableRandom r = new SplittableRandom(Long.getLong("jemma.bench.seed", 42));
        System.out.println("QKV norm, fused vs unfused, per layer; " + gpu.device());
        List<Row> rows = new ArrayList<>();
        for (Case c : CASES) {
            for (int tokens : TOKENS) {
                Layer a = new Layer(gpu, c, tokens, r);
                double error = compare(gpu, a, norms);
                Layer l = new Layer(gpu, c, tokens, r);
                double ue = perLayer(gpu, () -> l.unfused(ctx, norms));
                double fe = perLayer(gpu, () -> l.fused(ctx));
                double ug = perLayerGraph(gpu, () -> l.unfused(ctx, norms));
                double fg = perLayerGraph(gpu, () -> l.fused(ctx));
                rows.add(new Row(c, tokens, ue, fe, ug, fg, error));
            }
        }
        print(rows);
        gpu.close();
    }

    /** Runs both on the same inputs; the largest relative error over q, k, v and the written cache rows. */
    private static double compare(CudaBackend gpu, Layer a, NormKernels norms) {
        Layer b = a.copy(gpu);
        a.unfused(gpu.context(), norms);
        b.fused(gpu.context());
        gpu.synchronize();
        double e = GpuTests.relativeError(gpu.toHost(b.q), gpu.toHost(a.q));
        if (a.c.mode() != QkvNormMode.Q_ONLY) {
            e = Math.max(e, GpuTests.relativeError(gpu.toHost(b.k), gpu.toHost(a.k)));
            e = Math.max(e, GpuTests.relativeError(gpu.toHost(b.v), gpu.toHost(a.v)));
            e = Math.max(e, GpuTests.relativeError(cache(gpu, b.kCache), cache(gpu, a.kCache)));
            e = Math.max(e, GpuTests.relativeError(cache(gpu, b.vCache), cache(gpu, a.vCache)));
        }
        return e;
    }

    private static float[] cache(CudaBackend gpu, DeviceBuffer b) {
        MemorySegment s = MemorySegment.ofArray(new short[Math.toIntExact(b.bytes() / 2)]);
        gpu.read(b, s);
        float[] out = new float[Math.toIntExact(b.bytes() / 2)];
        for (int i = 0; i < out.length; i++) {
            out[i] = DType.bf16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT, i));
        }
        return out;
    }

    /** Microseconds per layer, eager: the median of 30 timed runs of LAYERS repetitions. */
    private static double perLayer(CudaBackend gpu, Runnable layer) {
        Runnable many = () -> {
            for (int i = 0; i < LAYERS; i++) {
                layer.run();
            }
        };
        return new EventTimer(gpu).medianMillis(many, 5, 30) * 1000 / LAYERS;
    }

    /** Microseconds per layer from one graph of LAYERS repetitions. */
    private static double perLayerGraph(CudaBackend gpu, Runnable layer) {
        try (CudaGraph graph = gpu.capture(() -> {
            for (int i = 0; i < LAYERS; i++) {
                layer.run();
            }
        })) {
            return new EventTimer(gpu).medianMillis(graph::replay, 5, 30) * 1000 / LAYERS;
        }
    }

    private static void print(List<Row> rows) {
        String head = String.format(Locale.ROOT, "%-8s %-17s %6s | %9s %9s %7s | %9s %9s %7s | %9s",
                "mode", "layout", "tokens", "unfused", "fused", "speedup", "unfused", "fused", "speedup", "max err");
        System.out.println();
        System.out.println(String.format(Locale.ROOT, "%-33s | %-27s | %-27s |", "", "eager (us per layer)",
                "CUDA graph (us per layer)"));
        System.out.println(head);
        System.out.println("-".repeat(head.length()));
        StringBuilder tsv = new StringBuilder("mode\tlayout\ttokens\tunfused_eager_us\tfused_eager_us\t"
                + "unfused_graph_us\tfused_graph_us\tmax_rel_err\n");
        for (Row w : rows) {
            System.out.println(String.format(Locale.ROOT, "%-8s %-17s %6d | %9.2f %9.2f %6.2fx | %9.2f %9.2f %6.2fx | %9.1e",
                    w.c().mode(), w.c().layout(), w.tokens(), w.unfusedEager(), w.fusedEager(),
                    w.unfusedEager() / w.fusedEager(), w.unfusedGraph(), w.fusedGraph(),
                    w.unfusedGraph() / w.fusedGraph(), w.maxError()));
            tsv.append(String.format(Locale.ROOT, "%s\t%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.2e%n", w.c().mode(),
                    w.c().layout(), w.tokens(), w.unfusedEager(), w.fusedEager(), w.unfusedGraph(), w.fusedGraph(),
                    w.maxError()));
        }
        String out = System.getenv("OUT");
        if (out != null && !out.isBlank()) {
            try {
                java.nio.file.Files.writeString(java.nio.file.Path.of(out, "qkv-norm-bench.tsv"), tsv.toString());
            } catch (java.io.IOException e) {
                System.err.println("could not write the TSV: " + e);
            }
        }
    }

    private static float[] uniform(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextDouble() * 4 - 2);
        }
        return v;
    }

    private static HostTensor vector(SplittableRandom r, String name, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (0.5 + r.nextDouble());
        }
        return GpuTests.tensor(name, DType.F32, new long[] {n}, v);
    }

    private static DeviceBuffer ints(CudaBackend gpu, int[] values) {
        DeviceBuffer b = gpu.deviceBuffer(4L * values.length);
        MemorySegment src = MemorySegment.ofArray(values);
        gpu.context().transfers().upload((offset, dst) -> MemorySegment.copy(src, offset, dst, 0, dst.byteSize()),
                src.byteSize(), b, 0);
        return b;
    }

    private static DeviceBuffer floats(CudaBackend gpu, float[] values) {
        DeviceBuffer b = gpu.deviceBuffer(4L * values.length);
        MemorySegment src = MemorySegment.ofArray(values);
        gpu.context().transfers().upload((offset, dst) -> MemorySegment.copy(src, offset, dst, 0, dst.byteSize()),
                src.byteSize(), b, 0);
        return b;
    }

    private static CudaTensor dup(CudaBackend gpu, CudaTensor t) {
        CudaTensor d = (CudaTensor) gpu.allocate(t.rows(), t.cols());
        gpu.copy(t, d);
        return d;
    }
}
