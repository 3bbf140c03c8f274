package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.FP32_BOUND;
import static io.jemma.backend.cuda.GpuTests.assertClose;
import static io.jemma.backend.cuda.GpuTests.cpu;
import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.pair;
import static io.jemma.backend.cuda.GpuTests.tensor;
import static io.jemma.backend.cuda.GpuTests.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.backend.DType;
import io.jemma.backend.Positions;
import io.jemma.backend.QkvNormMode;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import io.jemma.model.config.RopeSpec;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * qkv_norm.cu against the CPU backend in all three modes at Gemma 4's head layouts (sliding: head dim
 * 256 with default RoPE, theta 1e4; full: 512 with proportional RoPE, theta 1e6, a quarter rotating),
 * positions up to the 262144 context, q/k/v both as separate tensors and as column views of one fused
 * projection; and the fused KV-cache write.
 */
@Tag("gpu")
class QkvNormGpuTest {
    private static final float EPS = 1e-6f;

    /** heads, kvHeads, headDim, sliding (default RoPE) or full (proportional RoPE). */
    private record Layout(int heads, int kvHeads, int headDim, boolean sliding) {
        float[] invFreq() {
            return sliding ? RopeSpec.defaultRope(10_000).inverseFrequencies(headDim)
                    : RopeSpec.proportional(1_000_000, 0.25).inverseFrequencies(headDim);
        }

        @Override
        public String toString() {
            return heads + "/" + kvHeads + " heads x " + headDim + (sliding ? " sliding" : " full");
        }
    }

    private static final Layout[] LAYOUTS = {
        new Layout(32, 16, 256, true),   // 31B sliding
        new Layout(32, 4, 512, false),   // 31B full (k_eq_v)
        new Layout(16, 8, 256, true),    // 26B-A4B sliding
        new Layout(16, 2, 512, false),   // 26B-A4B full
        new Layout(8, 2, 256, true),     // E4B sliding
        new Layout(8, 1, 512, false),    // E2B full
    };

    private record Weights(Weight qCpu, Weight qGpu, Weight kCpu, Weight kGpu) {
        static Weights random(SplittableRandom r, int headDim) {
            var q = tensor("q_norm", DType.BF16, new long[] {headDim}, uniform(r, headDim, 0.5, 1.5));
            var k = tensor("k_norm", DType.BF16, new long[] {headDim}, uniform(r, headDim, 0.5, 1.5));
            return new Weights(cpu().load(q), gpu().load(q), cpu().load(k), gpu().load(k));
        }
    }

    private static int[] positions(SplittableRandom r, int tokens) {
        int[] p = new int[tokens];
        int start = r.nextInt(262_144 - tokens);
        for (int i = 0; i < tokens; i++) {
            p[i] = i == 0 && tokens > 2 ? 0 : start + i;   // position 0 (no rotation) among large ones
        }
        return p;
    }

    /** Runs one mode on both backends; fused: q, k, v are column views of one [tokens, q + 2 kv] tensor. */
    private static void check(SplittableRandom r, QkvNormMode mode, Layout l, int tokens, boolean fused) {
        int qw = l.heads() * l.headDim();
        int kw = l.kvHeads() * l.headDim();
        Weights w = Weights.random(r, l.headDim());
        Positions pos = new Positions(positions(r, tokens));
        float[] inv = l.invFreq();
        String what = mode + " " + l + " tokens " + tokens + (fused ? " fused view" : "");

        Tensor cq, ck, cv, gq, gk, gv;
        if (fused) {
            var all = pair(uniform(r, tokens * (qw + 2 * kw), -3, 3), tokens, qw + 2 * kw);
            cq = all.cpu().columns(0, qw);
            ck = all.cpu().columns(qw, kw);
            cv = all.cpu().columns(qw + kw, kw);
            gq = all.gpu().columns(0, qw);
            gk = all.gpu().columns(qw, kw);
            gv = all.gpu().columns(qw + kw, kw);
        } else {
            var q = pair(uniform(r, tokens * qw, -3, 3), tokens, qw);
            var k = pair(uniform(r, tokens * kw, -3, 3), tokens, kw);
            var v = pair(uniform(r, tokens * kw, -3, 3), tokens, kw);
            cq = q.cpu();
            ck = k.cpu();
            cv = v.cpu();
            gq = q.gpu();
            gk = k.gpu();
            gv = v.gpu();
        }
        if (mode == QkvNormMode.QK_EQ_V) {
            gpu().fill(gv, Float.NaN);      // written from k: every element must be
        }
        boolean kv = mode != QkvNormMode.Q_ONLY;
        cpu().qkvNorm(mode, cq, kv ? ck : null, kv ? cv : null, l.headDim(), w.qCpu(), kv ? w.kCpu() : null, EPS,
                pos, inv);
        gpu().qkvNorm(mode, gq, kv ? gk : null, kv ? gv : null, l.headDim(), w.qGpu(), kv ? w.kGpu() : null, EPS,
                pos, inv);
        assertClose("qkvNorm", what + " q", gpu().toHost(gq), cpu().toHost(cq), FP32_BOUND);
        if (kv) {
            assertClose("qkvNorm", what + " k", gpu().toHost(gk), cpu().toHost(ck), FP32_BOUND);
            assertClose("qkvNorm", what + " v", gpu().toHost(gv), cpu().toHost(cv), FP32_BOUND);
        }
    }

    @Test
    void qkvAtEveryLayout() {
        SplittableRandom r = GpuTests.random("qkvNorm QKV");
        for (Layout l : LAYOUTS) {
            for (int tokens : new int[] {1, 5, 40}) {
                check(r, QkvNormMode.QKV, l, tokens, false);
            }
            check(r, QkvNormMode.QKV, l, 7, true);
        }
    }

    @Test
    void kEqV() {
        SplittableRandom r = GpuTests.random("qkvNorm QK_EQ_V");
        for (Layout l : LAYOUTS) {
            if (!l.sliding()) {
                for (int tokens : new int[] {1, 6, 33}) {
                    check(r, QkvNormMode.QK_EQ_V, l, tokens, false);
                }
                check(r, QkvNormMode.QK_EQ_V, l, 4, true);
            }
        }
    }

    @Test
    void qOnly() {
        SplittableRandom r = GpuTests.random("qkvNorm Q_ONLY");
        for (Layout l : new Layout[] {LAYOUTS[4], LAYOUTS[5]}) {
            for (int tokens : new int[] {1, 9}) {
                check(r, QkvNormMode.Q_ONLY, l, tokens, false);
            }
        }
    }

    /** Decode and verify batches (1 to 32 tokens) at the 31B's layouts in all three modes: the warp kernels' shapes. */
    @Test
    void decodeBatchesAt31bLayouts() {
        SplittableRandom r = GpuTests.random("qkvNorm decode batches");
        for (int tokens : new int[] {1, 2, 3, 4, 8, 16, 32}) {
            check(r, QkvNormMode.QKV, LAYOUTS[0], tokens, tokens == 3);
            check(r, QkvNormMode.QK_EQ_V, LAYOUTS[1], tokens, tokens == 3);
            check(r, QkvNormMode.Q_ONLY, LAYOUTS[0], tokens, false);
            check(r, QkvNormMode.Q_ONLY, LAYOUTS[1], tokens, false);
        }
    }

    @Test
    void smallHeadDims() {
        // The tiny golden checkpoints' kind of shapes: fewer threads than a warp per head.
        SplittableRandom r = GpuTests.random("qkvNorm small heads");
        check(r, QkvNormMode.QKV, new Layout(4, 2, 16, true), 3, false);
        check(r, QkvNormMode.QK_EQ_V, new Layout(4, 1, 32, false), 3, true);
        check(r, QkvNormMode.QKV, new Layout(2, 1, 2, true), 2, false);
    }

    /**
     * q, k and v as their projections' bf16-only outputs (a prefill's GEMMs with bf16 D,
     * CudaBackend.allocateBf16Output;
     * fp32 memory poisoned): the bf16-input kernels against the CPU on the same values, in all three modes at the 31B
     * layouts. Without a cache write every output is fp32 as before; with one, q is, the cache holds bf16 of the CPU's
     * k and v, and k and v are marked spent (their fp32 results were not stored: reading them throws).
     */
    @Test
    void bf16ProjectionInputs() {
        gpu().bf16Q(false);                      // q's fp32 result (bf16QueryOutput: q only as bf16)
        try {
            bf16ProjectionInputs(false);
        } finally {
            gpu().bf16Q(CudaBackend.BF16_Q);
        }
    }

    /**
     * The same with q stored only as bf16 (CudaBackend.BF16_Q, the _bq kernels): q's bf16 copy, overwritten in place,
     * against the CPU's q (bf16's bound: a copy element the kernel left unwritten still holds the raw projection, far
     * from the normalized, weighted and rotated value), q's fp32 memory untouched (still the NaN poison) and q marked
     * as held only in its copy; k, v and the caches as before.
     */
    @Test
    void bf16QueryOutput() {
        gpu().bf16Q(true);
        try {
            bf16ProjectionInputs(true);
        } finally {
            gpu().bf16Q(CudaBackend.BF16_Q);
        }
    }

    private static void bf16ProjectionInputs(boolean qBf16) {
        SplittableRandom r = GpuTests.random("qkvNorm bf16 inputs" + (qBf16 ? " bf16 q" : ""));
        for (QkvNormMode mode : QkvNormMode.values()) {
            for (Layout l : new Layout[] {LAYOUTS[0], LAYOUTS[1]}) {
                if (mode == QkvNormMode.QK_EQ_V && l.sliding()) {
                    continue;
                }
                for (int tokens : new int[] {5, 40}) {
                    for (boolean cached : new boolean[] {false, true}) {
                        if (cached && mode == QkvNormMode.Q_ONLY) {
                            continue;
                        }
                        bf16Case(r, mode, l, tokens, cached, qBf16);
                    }
                }
            }
        }
    }

    private static void bf16Case(SplittableRandom r, QkvNormMode mode, Layout l, int tokens, boolean cached,
                                 boolean qBf16) {
        int qw = l.heads() * l.headDim();
        int kw = l.kvHeads() * l.headDim();
        boolean kv = mode != QkvNormMode.Q_ONLY;
        Weights w = Weights.random(r, l.headDim());
        Positions pos = new Positions(positions(r, tokens));
        var q = GpuTests.bf16OnlyPair(uniform(r, tokens * qw, -3, 3), tokens, qw);
        var k = kv ? GpuTests.bf16OnlyPair(uniform(r, tokens * kw, -3, 3), tokens, kw) : null;
        var v = kv ? GpuTests.bf16OnlyPair(uniform(r, tokens * kw, -3, 3), tokens, kw) : null;
        String what = mode + " " + l + " tokens " + tokens + " bf16 inputs" + (cached ? " + cache write" : "")
                + (qBf16 ? " bf16 q" : "");
        cpu().qkvNorm(mode, q.cpu(), kv ? k.cpu() : null, kv ? v.cpu() : null, l.headDim(), w.qCpu(),
                kv ? w.kCpu() : null, EPS, pos, l.invFreq());
        int cacheRows = tokens + 3;
        DeviceBuffer kCache = null;
        DeviceBuffer vCache = null;
        int[] slots = new int[tokens];
        if (cached) {
            long cacheBytes = (long) cacheRows * kw * 2;
            kCache = gpu().deviceBuffer(cacheBytes);
            vCache = gpu().deviceBuffer(cacheBytes);
            gpu().context().fill32(kCache, 0, cacheBytes / 4, 0x7FC07FC0);
            gpu().context().fill32(vCache, 0, cacheBytes / 4, 0x7FC07FC0);
            for (int t = 0; t < tokens; t++) {
                slots[t] = (t * 7 + 2) % cacheRows;
            }
        }
        gpu().qkvNorm(mode, q.gpu(), kv ? k.gpu() : null, kv ? v.gpu() : null, l.headDim(), w.qGpu(),
                kv ? w.kGpu() : null, EPS, pos, l.invFreq(),
                cached ? new QkvNormKernels.KvWrite(slots, kCache, vCache) : null);
        if (qBf16 && (l.headDim() == 256 || CudaBackend.BF16_Q_HD512)) {    // the head dims CudaBackend takes
            CudaTensor cq = (CudaTensor) q.gpu();
            assertTrue(cq.fp32Stale() && cq.onlyOperand() != 0, what + ": q held only in its bf16 copy");
            short[] copy = new short[tokens * qw];
            gpu().read(cq.operand().buffer(), MemorySegment.ofArray(copy));
            float[] got = new float[copy.length];
            for (int i = 0; i < copy.length; i++) {
                got[i] = Float.intBitsToFloat((copy[i] & 0xFFFF) << 16);
            }
            assertClose("qkvNorm", what + " q (bf16)", got, cpu().toHost(q.cpu()), GpuTests.BF16_BOUND / 2);
            float[] fp32 = new float[tokens * qw];
            gpu().read(cq.buffer(), MemorySegment.ofArray(fp32));
            int written = 0;
            for (float x : fp32) {
                written += Float.isNaN(x) ? 0 : 1;
            }
            assertEquals(0, written, what + ": q's fp32 memory was written");
        } else {
            assertClose("qkvNorm", what + " q", gpu().toHost(q.gpu()), cpu().toHost(q.cpu()), FP32_BOUND);
        }
        if (!kv) {
            return;
        }
        if (!cached) {
            assertClose("qkvNorm", what + " k", gpu().toHost(k.gpu()), cpu().toHost(k.cpu()), FP32_BOUND);
            assertClose("qkvNorm", what + " v", gpu().toHost(v.gpu()), cpu().toHost(v.cpu()), FP32_BOUND);
            return;
        }
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () -> gpu().toHost(k.gpu()),
                "k's fp32 values were not stored");
        for (boolean value : new boolean[] {false, true}) {
            short[] cache = new short[cacheRows * kw];
            gpu().read(value ? vCache : kCache, MemorySegment.ofArray(cache));
            float[] rows = new float[tokens * kw];
            for (int t = 0; t < tokens; t++) {
                for (int i = 0; i < kw; i++) {
                    rows[t * kw + i] = Float.intBitsToFloat((cache[slots[t] * kw + i] & 0xFFFF) << 16);
                }
            }
            assertClose("qkvNorm", what + (value ? " v cache" : " k cache"), rows,
                    cpu().toHost(value ? v.cpu() : k.cpu()), GpuTests.BF16_BOUND / 2);
        }
    }

    /** The fused cache write stores exactly bf16(k) and bf16(v) at the given slots, and nothing elsewhere. */
    @Test
    void kvCacheWrite() {
        SplittableRandom r = GpuTests.random("qkvNorm KV write");
        for (QkvNormMode mode : new QkvNormMode[] {QkvNormMode.QKV, QkvNormMode.QK_EQ_V}) {
            Layout l = mode == QkvNormMode.QKV ? LAYOUTS[0] : LAYOUTS[1];
            int tokens = 6;
            int cacheRows = 64;
            int kw = l.kvHeads() * l.headDim();
            var q = pair(uniform(r, tokens * l.heads() * l.headDim(), -3, 3), tokens, l.heads() * l.headDim());
            var k = pair(uniform(r, tokens * kw, -3, 3), tokens, kw);
            var v = pair(uniform(r, tokens * kw, -3, 3), tokens, kw);
            Weights w = Weights.random(r, l.headDim());
            int[] slots = {3, 17, 0, 63, 40, 41};
            long cacheBytes = (long) cacheRows * kw * 2;
            DeviceBuffer kCache = gpu().deviceBuffer(cacheBytes);
            DeviceBuffer vCache = gpu().deviceBuffer(cacheBytes);
            int nanPair = 0x7FC07FC0;                         // two bf16 NaNs
            gpu().context().fill32(kCache, 0, cacheBytes / 4, nanPair);
            gpu().context().fill32(vCache, 0, cacheBytes / 4, nanPair);
            gpu().qkvNorm(mode, q.gpu(), k.gpu(), v.gpu(), l.headDim(), w.qGpu(), w.kGpu(), EPS,
                    new Positions(positions(r, tokens)), l.invFreq(), new QkvNormKernels.KvWrite(slots, kCache, vCache));
            float[] kOut = gpu().toHost(k.gpu());
            float[] vOut = gpu().toHost(v.gpu());
            MemorySegment kc = MemorySegment.ofArray(new short[cacheRows * kw]);
            MemorySegment vc = MemorySegment.ofArray(new short[cacheRows * kw]);
            gpu().read(kCache, kc);
            gpu().read(vCache, vc);
            int mismatches = 0;
            boolean[] used = new boolean[cacheRows];
            for (int t = 0; t < tokens; t++) {
                used[slots[t]] = true;
                for (int i = 0; i < kw; i++) {
                    short kb = kc.getAtIndex(ValueLayout.JAVA_SHORT, (long) slots[t] * kw + i);
                    short vb = vc.getAtIndex(ValueLayout.JAVA_SHORT, (long) slots[t] * kw + i);
                    if (kb != DType.floatToBf16(kOut[t * kw + i]) || vb != DType.floatToBf16(vOut[t * kw + i])) {
                        mismatches++;
                    }
                }
            }
            int written = 0;
            for (int s = 0; s < cacheRows; s++) {
                if (!used[s]) {
                    for (int i = 0; i < kw; i++) {
                        if (kc.getAtIndex(ValueLayout.JAVA_SHORT, (long) s * kw + i) != (short) 0x7FC0) {
                            written++;
                        }
                    }
                }
            }
            GpuReport.check("qkvNorm", "KV write " + mode + " " + l + ": mismatched / stray elements",
                    mismatches + written, 0, mismatches + written == 0);
            assertEquals(0, mismatches, "cache rows differ from bf16(k), bf16(v)");
            assertEquals(0, written, "rows outside the slots were written");
            assertTrue(kOut.length > 0);
        }
    }

    /**
     * The cache write through an attention backend's {@code kvWriteTarget} (the step's block tables, what the
     * model uses) stores bit for bit what the write through explicit slots stores, in both pools (a sliding
     * and a full layer, their own buffers), with the fast kernel (head dim 256 / 512) and the general one
     * (q, k, v as column views at an odd float offset: no 16-byte rows), for a prefill chunk and decode rows of
     * other sequences.
     */
    @Test
    void kvCacheWriteThroughStepMetadata() {
        SplittableRandom r = GpuTests.random("qkvNorm KV write metadata");
        for (int[] dims : new int[][] {{8, 2, 256, 0}, {8, 1, 512, 0}, {4, 2, 64, 1}}) {
            int heads = dims[0];
            int kvHeads = dims[1];
            int hd = dims[2];
            boolean misaligned = dims[3] == 1;
            var layers = java.util.List.of(
                    new io.jemma.attention.AttentionLayer(0, 0, true, heads, kvHeads, hd, 64, 1f),
                    new io.jemma.attention.AttentionLayer(1, 1, true, heads, kvHeads, hd, 0, 1f));
            io.jemma.attention.KvGeometry g = new io.jemma.attention.KvGeometry(16, 24, 24);
            TritonAttention attention = new TritonAttention(gpu().context(), layers, g);
            AttentionGpuTest.Pages pages = new AttentionGpuTest.Pages(r, g);
            var chunks = java.util.List.of(new io.jemma.attention.SequenceChunk(0, 5, 37, 0),
                    new io.jemma.attention.SequenceChunk(1, 70, 1, 37), new io.jemma.attention.SequenceChunk(2, 3, 1, 38));
            pages.extend(0, 42);
            pages.extend(1, 71);
            pages.extend(2, 4);
            io.jemma.attention.ForwardBatch batch = new io.jemma.attention.ForwardBatch(chunks, 39);
            int tokens = 39;
            int[] positions = batch.positions();
            attention.beginStep(batch, pages);
            int kw = kvHeads * hd;
            for (io.jemma.attention.AttentionLayer layer : layers) {
                boolean sliding = layer.slidingWindow() > 0;
                float[] invFreq = new float[hd / 2];
                for (int i = 0; i < invFreq.length; i++) {
                    invFreq[i] = (float) Math.pow(10_000, -2.0 * i / hd);
                }
                float[] q = uniform(r, tokens * heads * hd, -3, 3);
                float[] k = uniform(r, tokens * kw, -3, 3);
                float[] v = uniform(r, tokens * kw, -3, 3);
                Weights w = Weights.random(r, hd);
                PagedKvBuffers kv = attention.buffers();
                long cacheBytes = kv.slotsOf(layer.layer()) * kw * 2;
                int nanPair = 0x7FC07FC0;
                gpu().context().fill32(kv.keysOf(layer.layer()), 0, cacheBytes / 4, nanPair);
                gpu().context().fill32(kv.valuesOf(layer.layer()), 0, cacheBytes / 4, nanPair);
                Tensor[] qkv = misaligned ? misalignedViews(q, k, v, tokens, heads * hd, kw)
                        : new Tensor[] {gpu().fromHost(q, tokens, heads * hd), gpu().fromHost(k, tokens, kw),
                                gpu().fromHost(v, tokens, kw)};
                boolean stored = gpu().qkvNorm(QkvNormMode.QKV, qkv[0], qkv[1], qkv[2], hd, w.qGpu(), w.kGpu(), EPS,
                        new Positions(positions), invFreq, attention.kvWriteTarget(layer, batch, pages));
                assertTrue(stored, "the CUDA backend stores through its attention's target");
                int[] slots = new int[tokens];
                for (io.jemma.attention.SequenceChunk c : chunks) {
                    for (int i = 0; i < c.tokens(); i++) {
                        slots[c.firstRow() + i] = pages.slot(c.sequenceId(), sliding, c.startPosition() + i);
                    }
                }
                long rows = kv.slotsOf(layer.layer());
                DeviceBuffer kRef = gpu().deviceBuffer(cacheBytes);
                DeviceBuffer vRef = gpu().deviceBuffer(cacheBytes);
                gpu().context().fill32(kRef, 0, cacheBytes / 4, nanPair);
                gpu().context().fill32(vRef, 0, cacheBytes / 4, nanPair);
                Tensor[] ref = misaligned ? misalignedViews(q, k, v, tokens, heads * hd, kw)      // the same kernel
                        : new Tensor[] {gpu().fromHost(q, tokens, heads * hd), gpu().fromHost(k, tokens, kw),
                                gpu().fromHost(v, tokens, kw)};
                gpu().qkvNorm(QkvNormMode.QKV, ref[0], ref[1], ref[2], hd, w.qGpu(), w.kGpu(), EPS,
                        new Positions(positions), invFreq, new QkvNormKernels.KvWrite(slots, kRef, vRef));
                short[][] got = new short[4][(int) (rows * kw)];
                gpu().read(kv.keysOf(layer.layer()), MemorySegment.ofArray(got[0]));
                gpu().read(kv.valuesOf(layer.layer()), MemorySegment.ofArray(got[1]));
                gpu().read(kRef, MemorySegment.ofArray(got[2]));
                gpu().read(vRef, MemorySegment.ofArray(got[3]));
                int differ = 0;
                int stored2 = 0;
                for (int i = 0; i < got[0].length; i++) {
                    differ += got[0][i] != got[2][i] ? 1 : 0;
                    differ += got[1][i] != got[3][i] ? 1 : 0;
                    stored2 += got[0][i] != (short) 0x7FC0 ? 1 : 0;
                }
                GpuReport.check("qkvNorm", "KV write via metadata " + heads + "/" + kvHeads + "x" + hd
                        + (sliding ? " sliding" : " full") + ": elements differing from the slots write", differ, 0,
                        differ == 0);
                assertEquals(0, differ, "metadata write differs from the slots write");
                assertEquals(tokens * kw, stored2, "every new row stored once");
            }
        }
    }

    /** q, k, v as column views of one [tokens, 1 + q + 2 kv] tensor from column 1 (rows not 16-byte aligned). */
    private static Tensor[] misalignedViews(float[] q, float[] k, float[] v, int tokens, int qw, int kw) {
        int width = 1 + qw + 2 * kw;
        float[] all = new float[tokens * width];
        for (int t = 0; t < tokens; t++) {
            System.arraycopy(q, t * qw, all, t * width + 1, qw);
            System.arraycopy(k, t * kw, all, t * width + 1 + qw, kw);
            System.arraycopy(v, t * kw, all, t * width + 1 + qw + kw, kw);
        }
        Tensor fused = gpu().fromHost(all, tokens, width);
        return new Tensor[] {fused.columns(1, qw), fused.columns(1 + qw, kw), fused.columns(1 + qw + kw, kw)};
    }
}
