package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.assertClose;
import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.poisoned;
import static io.jemma.backend.cuda.GpuTests.uniform;
import static jcuda.driver.JCudaDriver.cuMemsetD16Async;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.attention.SequenceChunk;
import io.jemma.attention.TreeMask;
import io.jemma.backend.DType;
import io.jemma.backend.Tensor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * TritonAttention (attention_general.cu) against a float64 reference written here, on fresh random
 * q/k/v, outputs poisoned with NaN. The reference attends over the bf16-rounded K/V the backend stores
 * (the store's rounding is part of what is checked) and the unrounded fp32 q; the kernels round q and
 * the softmax weights to bf16 for the tensor cores, so the bound is bf16's: relative L2 error 1e-2.
 * Scores are scaled to a spread like a trained model's (standard deviation about 2.5).
 *
 * <p>Every scenario runs steps through a sliding layer, a full layer and a KV-shared reader of each:
 * prefill of mixed lengths in one batch (chunks of at most 8 tokens take the decode kernels, longer ones
 * the extend kernels), chunked prefill on top of the cache, decode, verify of 1 to 8 tokens, random
 * trees of up to 16 tokens (both paths), then long contexts where the decode kernels split the keys and
 * merge. Page tables are random; sliding pages behind every window are released (-1 in the block
 * tables) and filled with NaN on the GPU, so reading one would show.
 */
@Tag("gpu")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AttentionGpuTest {
    private static final double BOUND = 1e-2;

    /** Random page tables: pages from shuffled free lists as sequences grow; sliding pages released. */
    static final class Pages implements KvPages {
        private final int pageSize;
        private final SplittableRandom r;
        private final List<Integer> freeFull = new ArrayList<>();
        private final List<Integer> freeSliding = new ArrayList<>();
        private final Map<Long, List<Integer>> tables = new HashMap<>();

        Pages(SplittableRandom r, KvGeometry g) {
            this.r = r;
            pageSize = g.pageSize();
            for (int i = 0; i < g.fullPages(); i++) {
                freeFull.add(i);
            }
            for (int i = 0; i < g.slidingPages(); i++) {
                freeSliding.add(i);
            }
            shuffle(freeFull);
            shuffle(freeSliding);
        }

        private void shuffle(List<Integer> l) {
            for (int i = l.size() - 1; i > 0; i--) {
                int j = r.nextInt(i + 1);
                Integer t = l.get(i);
                l.set(i, l.get(j));
                l.set(j, t);
            }
        }

        private List<Integer> table(int seq, boolean sliding) {
            return tables.computeIfAbsent(((long) seq << 1) | (sliding ? 1 : 0), x -> new ArrayList<>());
        }

        /** Takes pages so that positions [0, length) have slots in both pools. */
        void extend(int seq, int length) {
            for (boolean sliding : new boolean[] {false, true}) {
                List<Integer> t = table(seq, sliding);
                List<Integer> free = sliding ? freeSliding : freeFull;
                while (t.size() * pageSize < length) {
                    if (free.isEmpty()) {
                        throw new IllegalStateException("test geometry too small");
                    }
                    t.add(free.removeLast());
                }
            }
        }

        /** Releases the sliding pages all of whose positions are before {@code position}; returns them. */
        List<Integer> releaseSlidingBefore(int seq, int position) {
            List<Integer> t = table(seq, true);
            List<Integer> released = new ArrayList<>();
            for (int p = 0; p < Math.min(position / pageSize, t.size()); p++) {
                if (t.get(p) >= 0) {
                    released.add(t.get(p));
                    freeSliding.add(t.get(p));
                    t.set(p, -1);
                }
            }
            return released;
        }

        @Override
        public int slot(int sequenceId, boolean sliding, int position) {
            int page = page(sequenceId, sliding, position / pageSize);
            if (page < 0) {
                throw new IllegalStateException("no page for position " + position);
            }
            return page * pageSize + position % pageSize;
        }

        @Override
        public int pageSize() {
            return pageSize;
        }

        @Override
        public int page(int sequenceId, boolean sliding, int logicalPage) {
            List<Integer> t = table(sequenceId, sliding);
            return logicalPage < t.size() ? t.get(logicalPage) : -1;
        }
    }

    /** The backend under test over a set of layers, the host mirror of its cache, and the reference. */
    static final class Run {
        final String name;
        final List<AttentionLayer> layers;
        final TritonAttention backend;
        final Pages pages;
        final SplittableRandom r;
        final int widestWindow;
        /** Per writing layer and sequence: the bf16-rounded K and V rows at each stored position. */
        final Map<Integer, Map<Integer, List<float[]>>> keys = new HashMap<>();
        final Map<Integer, Map<Integer, List<float[]>>> values = new HashMap<>();
        final Map<Integer, Integer> lengths = new HashMap<>();
        double worst;
        /**
         * Outputs as the model allocates them (Backend.allocateMatmulInput: contiguous, with a bf16 copy for the
         * o_proj GEMM): the copy, where the step marks it current, must equal the output rounded to bf16, and a
         * step of extend chunks only on the sm_90a kernel must mark it current.
         */
        boolean bf16Twin;
        /**
         * q as the QKV norm leaves it at prefill with CudaBackend.BF16_Q: only its bf16 copy holds the values (fp32
         * memory NaN), where the step has more rows than the GEMV takes (else fp32 as usual); the reference attends
         * with the same bf16 q. bf16QKept counts the layers after which q was still only bf16 (the sm_90a _bq kernel
         * read it; every other path widens it).
         */
        boolean bf16Q;
        int bf16QKept;
        /** K stored once in the full layers that write KV (their keys derived from the values), or null. */
        final KeysFromValuesTests derived;

        Run(String name, List<AttentionLayer> layers, KvGeometry g) {
            this(name, layers, g, false);
        }

        /** @param keysFromValues the full layers that write KV store K once (k_eq_v layers) */
        Run(String name, List<AttentionLayer> layers, KvGeometry g, boolean keysFromValues) {
            this.name = name;
            this.layers = layers;
            this.r = GpuTests.random("attention " + name);
            this.derived = keysFromValues ? new KeysFromValuesTests(r, layers) : null;
            this.backend = keysFromValues ? new TritonAttention(gpu().context(), layers, g, derived.sources)
                    : (TritonAttention) gpu().attention(layers, g);
            this.pages = new Pages(r, g);
            int w = 0;
            for (AttentionLayer l : layers) {
                w = Math.max(w, l.slidingWindow());
            }
            widestWindow = w;
        }

        /** The next chunk of a sequence (causal), continuing where it ended. */
        SequenceChunk next(int seq, int tokens, int row) {
            return new SequenceChunk(seq, lengths.getOrDefault(seq, 0), tokens, row);
        }

        SequenceChunk tree(int seq, TreeMask tree, int row) {
            return new SequenceChunk(seq, lengths.getOrDefault(seq, 0), tree.tokens(), row, tree);
        }

        /** Runs one step through every layer; {@code checkRows}: rows to compare (null: all). */
        void step(String what, List<SequenceChunk> chunks, int[] checkRows) {
            int n = 0;
            for (SequenceChunk c : chunks) {
                n += c.tokens();
            }
            ForwardBatch b = new ForwardBatch(chunks, n);
            for (SequenceChunk c : chunks) {
                pages.extend(c.sequenceId(), c.endPosition());
            }
            backend.beginStep(b, pages);
            for (AttentionLayer l : layers) {
                int qw = l.heads() * l.headDim();
                int kw = l.kvHeads() * l.headDim();
                double qScale = 7.5 / Math.sqrt(l.headDim()) / l.scale();
                float[] q = uniform(r, n * qw, -qScale, qScale);
                float[] k = uniform(r, n * kw, -1, 1);
                float[] v = uniform(r, n * kw, -1, 1);
                if (derived != null && l.writesKv() && derived.derives(l)) {
                    // A k_eq_v layer: V as the cache stores it, K what the kernels derive from it at each row's
                    // RoPE position (a tree token's: start + depth, though stored at start + index).
                    for (int i = 0; i < v.length; i++) {
                        v[i] = DType.bf16ToFloat(DType.floatToBf16(v[i]));
                    }
                    int[] positions = new int[n];
                    for (SequenceChunk c : chunks) {
                        for (int i = 0; i < c.tokens(); i++) {
                            positions[c.firstRow() + i] = c.position(i);
                        }
                    }
                    k = derived.keys(l, v, n, positions);
                }
                // q and out as column views of wider tensors (as in the model's fused projections); q's
                // offset 16-byte aligned in some layers (the sm_90a kernel's vector loads), not in others.
                int qOff = l.layer() % 4 == 2 ? 4 : 3;
                Tensor gq = bf16Q ? bf16OnlyQ(q, n, qw) : null;
                if (gq == null) {
                    gq = gpu().fromHost(pad(q, n, qw, qOff), n, qw + qOff).columns(qOff, qw);
                }
                Tensor gk = gpu().fromHost(k, n, kw);
                Tensor gv = gpu().fromHost(v, n, kw);
                Tensor gOut = bf16Twin ? gpu().allocateMatmulInput(n, qw) : poisoned(n, qw + 5).columns(5, qw);
                if (bf16Twin) {
                    gpu().fill(gOut, Float.NaN);
                    CudaTensor.Bf16Operand twin = ((CudaTensor) gOut).operand();
                    if (twin != null) {
                        Cu.check(cuMemsetD16Async(twin.buffer().pointer(0), (short) 0x7fc0, (long) n * qw,
                                gpu().context().stream()), "cuMemsetD16Async");
                    }
                }
                backend.attend(l, b, pages, gq, gk, gv, gOut);
                if (bf16Q && ((CudaTensor) gq).fp32Stale()) {
                    bf16QKept++;
                }
                if (l.writesKv()) {
                    store(l, chunks, k, v, kw, derived != null && derived.derives(l));
                }
                float[] actual = gpu().toHost(gOut);
                int[] rows = checkRows != null ? checkRows : IntStream.range(0, n).toArray();
                float[] expected = reference(l, chunks, q, rows);
                float[] got = new float[rows.length * qw];
                for (int i = 0; i < rows.length; i++) {
                    System.arraycopy(actual, rows[i] * qw, got, i * qw, qw);
                }
                String where = name + " " + what + " layer " + l.layer() + " (" + l.heads() + "/" + l.kvHeads() + "x"
                        + l.headDim() + (l.slidingWindow() > 0 ? " window " + l.slidingWindow() : "")
                        + (l.writesKv() ? "" : " shared") + ")";
                worst = Math.max(worst, GpuTests.relativeError(got, expected));
                assertClose("attention", where, got, expected, BOUND);
                if (bf16Twin) {
                    checkTwin(where, chunks, (CudaTensor) gOut, actual);
                }
            }
            if (derived != null) {
                rekeyTrees(chunks);
            }
            for (SequenceChunk c : chunks) {
                lengths.merge(c.sequenceId(), c.endPosition(), Math::max);
                if (widestWindow > 0) {
                    // As KvCache.written: the next query (at end) sees from end - window + 1 on.
                    List<Integer> released = pages.releaseSlidingBefore(c.sequenceId(),
                            c.endPosition() - widestWindow + 1);
                    poison(released);
                }
            }
        }

        /** q (rounded to bf16 in place, for the reference) as a bf16-only tensor, or null where it gets no copy. */
        private Tensor bf16OnlyQ(float[] q, int n, int qw) {
            CudaTensor t = gpu().allocateBf16Output(n, qw);
            if (t.operand() == null) {
                return null;
            }
            for (int i = 0; i < q.length; i++) {
                q[i] = DType.bf16ToFloat(DType.floatToBf16(q[i]));
            }
            CudaTensor src = (CudaTensor) gpu().fromHost(q, n, qw);
            new ActivationKernels(gpu().context()).toBf16(src, t.operand().address());    // exact: bf16 values
            gpu().fill(t, Float.NaN);
            t.operand().currentOnly();
            return t;
        }

        private void checkTwin(String where, List<SequenceChunk> chunks, CudaTensor out, float[] actual) {
            boolean extendOnly = chunks.stream().allMatch(c -> c.tokens() > TritonAttention.DECODE_MAX_TOKENS);
            boolean expected = extendOnly && out.operand() != null && gpu().context().info().sm90a();
            long at = out.currentOperand();
            GpuReport.check("attention", where + " bf16 copy current: " + (at != 0) + ", expected " + expected,
                    at != 0 == expected ? 0 : 1, 0, at != 0 == expected);
            assertEquals(expected, at != 0, where + ": bf16 copy current");
            if (at == 0) {
                return;
            }
            short[] twin = new short[actual.length];
            gpu().context().transfers().download(out.operand().buffer(), 0,
                    java.lang.foreign.MemorySegment.ofArray(twin));
            int wrong = 0;
            for (int i = 0; i < actual.length; i++) {
                if (twin[i] != DType.floatToBf16(actual[i])) {
                    wrong++;
                }
            }
            GpuReport.check("attention", where + " bf16 copy: elements not equal to the output rounded", wrong, 0,
                    wrong == 0);
            assertEquals(0, wrong, where + ": bf16 copy elements not equal to the output rounded to bf16");
        }

        /**
         * K stored once: after the step, a tree token's key is what the kernels derive from its value at the position
         * it is stored at (the engine moves accepted entries to start + depth and drops the others; this test keeps
         * them where they are), so the mirror's keys of those positions are derived again at start + index.
         */
        private void rekeyTrees(List<SequenceChunk> chunks) {
            for (AttentionLayer l : layers) {
                if (!l.writesKv() || !derived.derives(l)) {
                    continue;
                }
                int kw = l.kvHeads() * l.headDim();
                for (SequenceChunk c : chunks) {
                    if (c.tree() == null) {
                        continue;
                    }
                    List<float[]> ks = keys.get(l.layer()).get(c.sequenceId());
                    List<float[]> vs = values.get(l.layer()).get(c.sequenceId());
                    for (int i = 0; i < c.tokens(); i++) {
                        int kv = c.startPosition() + i;
                        ks.set(kv, derived.keys(l, vs.get(kv), 1, new int[] {kv}));
                    }
                }
            }
        }

        /** Fills released sliding pages of every sliding buffer with bf16 NaN. */
        private void poison(List<Integer> released) {
            for (AttentionLayer l : layers) {
                if (!l.writesKv() || l.slidingWindow() == 0) {
                    continue;
                }
                long rowBytes = (long) l.kvHeads() * l.headDim() * 2;
                for (int page : released) {
                    long offset = (long) page * pages.pageSize() * rowBytes;
                    long count = pages.pageSize() * rowBytes / 2;
                    for (DeviceBuffer buf : new DeviceBuffer[] {backend.buffers().keysOf(l.layer()),
                            backend.buffers().valuesOf(l.layer())}) {
                        Cu.check(cuMemsetD16Async(buf.pointer(offset), (short) 0x7fc0, count, gpu().context().stream()),
                                "cuMemsetD16Async");
                    }
                }
            }
        }

        /** @param keysAsGiven K stored once: the keys are already as the kernels use them (KeysFromValuesTests) */
        private void store(AttentionLayer l, List<SequenceChunk> chunks, float[] k, float[] v, int kw,
                           boolean keysAsGiven) {
            for (SequenceChunk c : chunks) {
                List<float[]> ks = keys.computeIfAbsent(l.layer(), x -> new HashMap<>())
                        .computeIfAbsent(c.sequenceId(), x -> new ArrayList<>());
                List<float[]> vs = values.computeIfAbsent(l.layer(), x -> new HashMap<>())
                        .computeIfAbsent(c.sequenceId(), x -> new ArrayList<>());
                for (int i = 0; i < c.tokens(); i++) {
                    int row = c.firstRow() + i;
                    float[] kr = new float[kw];
                    float[] vr = new float[kw];
                    for (int j = 0; j < kw; j++) {
                        kr[j] = keysAsGiven ? k[row * kw + j] : DType.bf16ToFloat(DType.floatToBf16(k[row * kw + j]));
                        vr[j] = DType.bf16ToFloat(DType.floatToBf16(v[row * kw + j]));
                    }
                    int kv = c.startPosition() + i;
                    while (ks.size() <= kv) {
                        ks.add(null);
                        vs.add(null);
                    }
                    ks.set(kv, kr);
                    vs.set(kv, vr);
                }
            }
        }

        /** float64 attention of the given rows over the mirror: the visibility rule of KvPages' users. */
        private float[] reference(AttentionLayer l, List<SequenceChunk> chunks, float[] q, int[] rows) {
            int hd = l.headDim();
            int qw = l.heads() * hd;
            float[] out = new float[rows.length * qw];
            IntStream.range(0, rows.length * l.heads()).parallel().forEach(job -> {
                int ri = job / l.heads();
                int head = job % l.heads();
                int row = rows[ri];
                SequenceChunk c = null;
                for (SequenceChunk x : chunks) {
                    if (row >= x.firstRow() && row < x.firstRow() + x.tokens()) {
                        c = x;
                    }
                }
                int i = row - c.firstRow();
                int position = c.position(i);
                int first = l.firstVisible(position);
                List<Integer> visible = new ArrayList<>();
                for (int kv = first; kv < c.startPosition(); kv++) {
                    visible.add(kv);
                }
                for (int j = 0; j <= i; j++) {
                    if (c.sees(i, j) && c.position(j) >= first) {
                        visible.add(c.startPosition() + j);
                    }
                }
                List<float[]> ks = keys.get(l.kvLayer()).get(c.sequenceId());
                List<float[]> vs = values.get(l.kvLayer()).get(c.sequenceId());
                int off = (head / l.groupSize()) * hd;
                double[] s = new double[visible.size()];
                double max = Double.NEGATIVE_INFINITY;
                for (int x = 0; x < s.length; x++) {
                    float[] kr = ks.get(visible.get(x));
                    double dot = 0;
                    for (int d = 0; d < hd; d++) {
                        dot += (double) q[row * qw + head * hd + d] * kr[off + d];
                    }
                    s[x] = dot * l.scale();
                    max = Math.max(max, s[x]);
                }
                double sum = 0;
                for (int x = 0; x < s.length; x++) {
                    s[x] = Math.exp(s[x] - max);
                    sum += s[x];
                }
                double[] acc = new double[hd];
                for (int x = 0; x < s.length; x++) {
                    float[] vr = vs.get(visible.get(x));
                    for (int d = 0; d < hd; d++) {
                        acc[d] += s[x] * vr[off + d];
                    }
                }
                for (int d = 0; d < hd; d++) {
                    out[ri * qw + head * hd + d] = (float) (acc[d] / sum);
                }
            });
            return out;
        }

        /** A random tree of n tokens: each token's parent is an earlier one. */
        TreeMask randomTree(int n) {
            int[] depth = new int[n];
            long[] visible = new long[n];
            visible[0] = 1;
            for (int i = 1; i < n; i++) {
                int parent = r.nextInt(i);
                depth[i] = depth[parent] + 1;
                visible[i] = visible[parent] | (1L << i);
            }
            return new TreeMask(depth, visible);
        }
    }

    private static float[] pad(float[] x, int rows, int cols, int left) {
        float[] out = new float[rows * (cols + left)];
        for (int i = 0; i < rows; i++) {
            System.arraycopy(x, i * cols, out, i * (cols + left) + left, cols);
        }
        return out;
    }

    /** Chunks laid out row after row from (sequence, tokens) pairs, each continuing its sequence. */
    private static List<SequenceChunk> chunks(Run run, int[][] seqTokens) {
        List<SequenceChunk> list = new ArrayList<>();
        int row = 0;
        for (int[] st : seqTokens) {
            list.add(run.next(st[0], st[1], row));
            row += st[1];
        }
        return list;
    }

    /** A sliding layer, a full layer, and a KV-shared reader of each. */
    private static List<AttentionLayer> gemmaLike(int window, int heads, int slidingKv, int slidingDim, int fullKv,
                                                  int fullDim) {
        return List.of(
                new AttentionLayer(0, 0, true, heads, slidingKv, slidingDim, window, 1.0f),
                new AttentionLayer(1, 1, true, heads, fullKv, fullDim, 0, 1.0f),
                new AttentionLayer(2, 0, false, heads, slidingKv, slidingDim, window, 1.0f),
                new AttentionLayer(3, 1, false, heads, fullKv, fullDim, 0, 1.0f));
    }

    private static KvGeometry geometry(int pageSize, int positions) {
        int pages = (positions + pageSize - 1) / pageSize + 64;
        return new KvGeometry(pageSize, pages, pages);
    }

    /** Prefill, chunked prefill, decode, verify of 1..8 tokens, trees on both paths, mixed. */
    private static void scenario(Run run) {
        run.step("prefill", chunks(run, new int[][] {{0, 150}, {1, 5}, {2, 1}, {3, 70}, {5, 9}}), null);
        run.step("chunked prefill", chunks(run, new int[][] {{0, 40}, {1, 64}, {4, 9}, {5, 1}}), null);
        for (int s = 0; s < 2; s++) {
            run.step("decode " + s, chunks(run, new int[][] {{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}}), null);
        }
        run.step("verify 1-8", chunks(run, new int[][] {{0, 4}, {1, 1}, {2, 8}, {3, 3}, {4, 6}, {5, 2}}), null);
        run.step("verify 5,7", chunks(run, new int[][] {{0, 5}, {3, 7}}), null);
        List<SequenceChunk> trees = new ArrayList<>();
        int row = 0;
        for (int[] st : new int[][] {{0, 16}, {1, 7}, {3, 12}, {4, 3}}) {
            trees.add(run.tree(st[0], run.randomTree(st[1]), row));
            row += st[1];
        }
        trees.add(run.next(2, 1, row));
        run.step("trees 16/7/12/3", trees, null);
        run.step("mixed", chunks(run, new int[][] {{4, 20}, {0, 1}, {2, 30}, {5, 8}}), null);
    }

    /**
     * K stored once (jemma.kv-store-k-eq-v-once): the full layer is a k_eq_v layer whose cache holds V only, its
     * keys derived in the kernels (decode, verify, trees, prefill: on Hopper the sm_90a KD kernel where its boxes fit
     * the pages, the mma.sync extend kernel elsewhere),
     * for itself and its KV-shared reader: the scenario at the 31B shapes with pages of 16 and 1, the golden
     * tiny-31b's full-layer shape (head dim 64, one KV head), and the long contexts (split KV).
     */
    @Test
    void keysStoredOnce() {
        Run run = new Run("31B page 16 K once", gemmaLike(64, 32, 16, 256, 4, 512), geometry(16, 4096), true);
        scenario(run);
        Run page1 = new Run("page 1 K once", gemmaLike(10, 32, 16, 256, 4, 512), geometry(1, 4096), true);
        scenario(page1);
        scenario(new Run("tiny-31b K once", gemmaLike(6, 4, 2, 32, 1, 64), geometry(4, 4096), true));
        Run longRun = new Run("31B long K once", gemmaLike(1024, 32, 16, 256, 4, 512), geometry(16, 16384), true);
        int[] sample = longRun.r.ints(48, 0, 2 * 2000).toArray();
        longRun.step("prefill 2 x 2000", chunks(longRun, new int[][] {{0, 2000}, {1, 2000}}), sample);
        longRun.step("prefill 1200 on top", chunks(longRun, new int[][] {{0, 1200}, {2, 1}}),
                longRun.r.ints(32, 0, 1201).toArray());
        longRun.step("decode", chunks(longRun, new int[][] {{0, 1}, {1, 1}, {2, 1}}), null);
        longRun.step("verify 4", chunks(longRun, new int[][] {{0, 4}, {1, 4}}), null);
        longRun.step("verify 8 + tree 6", List.of(longRun.next(0, 8, 0), longRun.tree(1, longRun.randomTree(6), 8)),
                null);
        GpuReport.check("attention", run.name + ": worst of all steps", run.worst, BOUND, run.worst <= BOUND);
        GpuReport.check("attention", longRun.name + ": worst of all steps", longRun.worst, BOUND,
                longRun.worst <= BOUND);
        // Which prefill kernel derived the keys: on Hopper the sm_90a KD kernel wherever its boxes fit the pages (16),
        // the mma.sync one elsewhere (pages of 1), so the checks above covered both.
        boolean hopper = gpu().context().info().sm90a();
        for (Run r : List.of(run, longRun)) {
            assertEquals(hopper, r.backend.keysFromValuesLaunches() > 0, r.name + ": the sm_90a kernel that derives K");
        }
        assertEquals(0, page1.backend.keysFromValuesLaunches(), "pages of 1 slot: no bulk copy, the mma.sync kernel");
    }

    @Test
    void gemma31bShapesPage16() {
        Run run = new Run("31B page 16", gemmaLike(64, 32, 16, 256, 4, 512), geometry(16, 4096));
        scenario(run);
        GpuReport.check("attention", run.name + ": worst of all steps", run.worst, BOUND, run.worst <= BOUND);
    }

    @Test
    void page1() {
        Run run = new Run("page 1", gemmaLike(10, 32, 16, 256, 4, 512), geometry(1, 4096));
        scenario(run);
    }

    @Test
    void page64WindowsCrossingPages() {
        // Windows of 70 over pages of 64: the windows of the longer sequences span two or three pages.
        Run run = new Run("page 64", gemmaLike(70, 32, 16, 256, 4, 512), geometry(64, 8192));
        scenario(run);
    }

    @Test
    void smallHeadsAndOtherGroups() {
        // The golden checkpoints' head dims (16, 32, 64), 128 (a padded bucket), and groups of 1, 4, 12.
        scenario(new Run("hd 16/32 groups 2/4", gemmaLike(8, 4, 2, 16, 1, 32), geometry(16, 4096)));
        scenario(new Run("hd 64/128 groups 12/1", List.of(
                new AttentionLayer(0, 0, true, 12, 1, 64, 24, 0.125f),
                new AttentionLayer(1, 1, true, 8, 8, 128, 0, 1.0f),
                new AttentionLayer(2, 1, false, 8, 8, 128, 0, 1.0f)), geometry(16, 4096)));
    }

    /**
     * Long contexts at the 31B shapes: prefill of 2 sequences (a sample of rows checked), then decode and
     * verify, where few (sequence, kv head) blocks make the decode kernels split the keys and merge.
     */
    @Test
    void longContextsSplitKv() {
        longContexts("31B long page 16", null);
    }

    /**
     * Every alternative kernel of attention_general.cu (TritonAttention.ALTERNATIVES) forced in place of
     * the table's choice wherever it fits: the scenario at the 31B shapes, and the long contexts for the
     * decode ones (split-KV and merge).
     */
    @Test
    void alternativeKernels() {
        for (String alt : TritonAttention.ALTERNATIVES) {
            boolean decode = alt.contains("decode");
            Run run = new Run("31B page 16 " + alt, gemmaLike(64, 32, 16, 256, 4, 512), geometry(16, 4096));
            run.backend.useVariants(decode ? alt : null, decode ? null : alt);
            scenario(run);
            if (decode) {
                longContexts("31B long " + alt, alt);
            }
        }
    }

    /**
     * The mma.sync extend kernel where the sm_90a one takes its place by default (Hopper): the scenario
     * and the long prefills at the 31B shapes with the sm_90a kernel turned off.
     */
    @Test
    void mmaSyncExtendOnHopper() {
        Run run = new Run("31B page 16 mma.sync extend", gemmaLike(64, 32, 16, 256, 4, 512), geometry(16, 4096));
        run.backend.useSm90Extend(false);
        scenario(run);
        Run longRun = new Run("31B long mma.sync extend", gemmaLike(1024, 32, 16, 256, 4, 512), geometry(16, 16384));
        longRun.backend.useSm90Extend(false);
        int[] sample = longRun.r.ints(48, 0, 2 * 2000).toArray();
        longRun.step("prefill 2 x 2000", chunks(longRun, new int[][] {{0, 2000}, {1, 2000}}), sample);
        GpuReport.check("attention", longRun.name + ": worst of all steps", longRun.worst, BOUND, longRun.worst <= BOUND);
    }

    /**
     * The sm_90a extend kernels' alternatives (Hopper, TritonAttention.SM90_SUFFIXES: attention_prefill_sm90.cu
     * says what each changes): the scenario and long prefills at the 31B shapes.
     */
    @Test
    void sm90ExtendAlternatives() {
        sm90Alternatives(false);
    }

    /**
     * The persistent sm_90a kernels (one block per SM over all items), as sm90ExtendAlternatives; last in the
     * class: a persistent kernel whose barriers wait for more than 5 seconds traps, which ends the CUDA context
     * of the process.
     */
    @Test
    @Order(Integer.MAX_VALUE)
    void sm90PersistentKernels() {
        sm90Alternatives(true);
    }

    private static void sm90Alternatives(boolean persistent) {
        for (String suffix : TritonAttention.SM90_SUFFIXES) {
            if (suffix.contains("persist") != persistent || !GpuTests.sm90SuffixSelected(suffix)) {
                continue;
            }
            Run run = new Run("31B page 16 sm90" + suffix, gemmaLike(64, 32, 16, 256, 4, 512), geometry(16, 4096));
            run.backend.useSm90Variant(suffix);
            scenario(run);
            Run longRun = new Run("31B long sm90" + suffix, gemmaLike(1024, 32, 16, 256, 4, 512), geometry(16, 16384));
            longRun.backend.useSm90Variant(suffix);
            int[] sample = longRun.r.ints(48, 0, 2 * 2000).toArray();
            longRun.step("prefill 2 x 2000", chunks(longRun, new int[][] {{0, 2000}, {1, 2000}}), sample);
            longRun.step("prefill 1200 on top", chunks(longRun, new int[][] {{0, 1200}, {2, 1}}),
                    longRun.r.ints(32, 0, 1201).toArray());
            GpuReport.check("attention", longRun.name + ": worst of all steps", longRun.worst, BOUND,
                    longRun.worst <= BOUND);
        }
    }

    /**
     * Outputs with a bf16 copy (as the model allocates attention's output): the sm_90a kernel writes the copy
     * in steps of extend chunks only (prefill 2 x 2000) and leaves it stale, marked so, in mixed steps.
     */
    @Test
    void bf16CopyOfTheOutput() {
        Run run = new Run("31B long bf16 copy", gemmaLike(1024, 32, 16, 256, 4, 512), geometry(16, 16384));
        run.bf16Twin = true;
        int[] sample = run.r.ints(48, 0, 2 * 2000).toArray();
        run.step("prefill 2 x 2000", chunks(run, new int[][] {{0, 2000}, {1, 2000}}), sample);
        run.step("prefill 1200 on top", chunks(run, new int[][] {{0, 1200}, {2, 1}}), run.r.ints(32, 0, 1201).toArray());
        run.step("prefill 100 + 40", chunks(run, new int[][] {{1, 100}, {3, 40}}), null);
        GpuReport.check("attention", run.name + ": worst of all steps", run.worst, BOUND, run.worst <= BOUND);
    }

    /**
     * q held only as bf16 (CudaBackend.BF16_Q, the QKV norm's prefill output): the sm_90a _bq kernels (the defaults'
     * bf16-q forms) read it in steps of extend chunks only, every other path (decode and verify items in
     * the step, K stored once, the mma.sync kernel) widens it first: the scenario, the long prefills and K once.
     */
    @Test
    void bf16Queries() {
        boolean hopper = gpu().context().info().sm90a();
        Run run = new Run("31B page 16 bf16 q", gemmaLike(64, 32, 16, 256, 4, 512), geometry(16, 4096));
        run.bf16Q = true;
        scenario(run);
        Run once = new Run("31B page 16 K once bf16 q", gemmaLike(64, 32, 16, 256, 4, 512), geometry(16, 4096), true);
        once.bf16Q = true;
        scenario(once);
        Run longRun = new Run("31B long bf16 q", gemmaLike(1024, 32, 16, 256, 4, 512), geometry(16, 16384));
        longRun.bf16Q = true;
        int[] sample = longRun.r.ints(48, 0, 2 * 2000).toArray();
        longRun.step("prefill 2 x 2000", chunks(longRun, new int[][] {{0, 2000}, {1, 2000}}), sample);
        int kept = longRun.bf16QKept;
        longRun.step("prefill 1200 on top", chunks(longRun, new int[][] {{0, 1200}, {2, 1}}),
                longRun.r.ints(32, 0, 1201).toArray());
        longRun.step("prefill 600 + 300", chunks(longRun, new int[][] {{1, 600}, {3, 300}}), null);
        longRun.step("decode", chunks(longRun, new int[][] {{0, 1}, {1, 1}, {2, 1}}), null);
        longRun.step("verify 4", chunks(longRun, new int[][] {{0, 4}, {1, 4}}), null);
        GpuReport.check("attention", longRun.name + ": layers whose sm_90a kernel read bf16 q in prefill 2 x 2000",
                kept, longRun.layers.size(), !hopper || kept == longRun.layers.size());
        if (hopper) {
            assertEquals(longRun.layers.size(), kept, "the _bq kernels read bf16 q in a step of extend chunks only");
        }
        Run mma = new Run("31B long mma.sync bf16 q", gemmaLike(1024, 32, 16, 256, 4, 512), geometry(16, 16384));
        mma.bf16Q = true;
        mma.backend.useSm90Extend(false);
        mma.step("prefill 2 x 2000", chunks(mma, new int[][] {{0, 2000}, {1, 2000}}), mma.r.ints(48, 0, 4000).toArray());
        assertEquals(0, mma.bf16QKept, "the mma.sync kernel reads fp32 q: widened");
        for (Run x : new Run[] {run, once, longRun, mma}) {
            GpuReport.check("attention", x.name + ": worst of all steps", x.worst, BOUND, x.worst <= BOUND);
        }
    }

    private static void longContexts(String name, String decodeKernel) {
        Run run = new Run(name, gemmaLike(1024, 32, 16, 256, 4, 512), geometry(16, 16384));
        run.backend.useVariants(decodeKernel, null);
        int[] sample = run.r.ints(48, 0, 2 * 2000).toArray();
        run.step("prefill 2 x 2000", chunks(run, new int[][] {{0, 2000}, {1, 2000}}), sample);
        run.step("prefill 1200 on top", chunks(run, new int[][] {{0, 1200}, {2, 1}}), run.r.ints(32, 0, 1201).toArray());
        run.step("decode", chunks(run, new int[][] {{0, 1}, {1, 1}, {2, 1}}), null);
        run.step("verify 4", chunks(run, new int[][] {{0, 4}, {1, 4}}), null);
        run.step("verify 8 + tree 6", List.of(run.next(0, 8, 0), run.tree(1, run.randomTree(6), 8)), null);
        run.step("decode single", chunks(run, new int[][] {{1, 1}}), null);
        GpuReport.check("attention", run.name + ": worst of all steps", run.worst, BOUND, run.worst <= BOUND);
    }
}
