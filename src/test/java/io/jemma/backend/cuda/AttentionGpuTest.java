package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.assertClose;
import static io.jemma.backend.cuda.GpuTests.cpu;
import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.poisoned;
import static io.jemma.backend.cuda.GpuTests.uniform;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.backend.DType;
import io.jemma.backend.Tensor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * CudaAttention against CpuAttention: the same batches through both, on fresh random q/k/v, GPU outputs
 * poisoned with NaN. The K/V fed to both are rounded to bf16 first (the GPU cache is bf16), so the bound is
 * tight (1e-3: fp32 summation order and expf only); one scenario also feeds unrounded K/V (bound 1e-2).
 * Scenarios: prefill of several sequences of different lengths in one batch, chunked prefill on top of
 * the cache, decode batches with mixed lengths, sliding windows crossing page boundaries, page sizes 1,
 * 16, 64, head dims 256/512 with GQA 32/16 and 32/4, tiny heads, and KV-shared layers.
 */
@Tag("gpu")
class AttentionGpuTest {
    private static final double TIGHT = 1e-3;
    private static final double BF16 = 1e-2;

    /** Random page tables: every (sequence, pool) gets pages from a shuffled free list on demand. */
    private static final class Pages implements KvPages {
        private final int pageSize;
        private final List<Integer> freeFull = new ArrayList<>();
        private final List<Integer> freeSliding = new ArrayList<>();
        private final Map<Long, List<Integer>> tables = new HashMap<>();

        Pages(SplittableRandom r, KvGeometry g) {
            pageSize = g.pageSize();
            for (int i = 0; i < g.fullPages(); i++) {
                freeFull.add(i);
            }
            for (int i = 0; i < g.slidingPages(); i++) {
                freeSliding.add(i);
            }
            shuffle(r, freeFull);
            shuffle(r, freeSliding);
        }

        private static void shuffle(SplittableRandom r, List<Integer> l) {
            for (int i = l.size() - 1; i > 0; i--) {
                int j = r.nextInt(i + 1);
                Integer t = l.get(i);
                l.set(i, l.get(j));
                l.set(j, t);
            }
        }

        @Override
        public int slot(int sequenceId, boolean sliding, int position) {
            List<Integer> table = tables.computeIfAbsent(((long) sequenceId << 1) | (sliding ? 1 : 0),
                    x -> new ArrayList<>());
            int page = position / pageSize;
            while (table.size() <= page) {
                List<Integer> free = sliding ? freeSliding : freeFull;
                table.add(free.removeLast());
            }
            return table.get(page) * pageSize + position % pageSize;
        }

        @Override
        public int pageSize() {
            return pageSize;
        }

        @Override
        public int page(int sequenceId, boolean sliding, int logicalPage) {
            List<Integer> table = tables.get(((long) sequenceId << 1) | (sliding ? 1 : 0));
            return table == null || logicalPage >= table.size() ? -1 : table.get(logicalPage);
        }
    }

    /** Both backends over the same layers and pages; runs batches through every layer in order. */
    private static final class Run {
        final String name;
        final List<AttentionLayer> layers;
        final AttentionBackend onCpu;
        final AttentionBackend onGpu;
        final Pages pages;
        final SplittableRandom r;
        final boolean roundKv;

        Run(String name, List<AttentionLayer> layers, KvGeometry g, boolean roundKv) {
            this.name = name;
            this.layers = layers;
            this.r = GpuTests.random("attention " + name);
            this.onCpu = cpu().attention(layers, g);
            this.onGpu = gpu().attention(layers, g);
            this.pages = new Pages(r, g);
            this.roundKv = roundKv;
        }

        void batch(String what, int[][] chunks) {
            ForwardBatch b = ForwardBatch.of(chunks);
            int n = b.totalTokens();
            for (AttentionLayer l : layers) {
                int qw = l.heads() * l.headDim();
                int kw = l.kvHeads() * l.headDim();
                float[] q = uniform(r, n * qw, -1, 1);
                float[] k = uniform(r, n * kw, -1, 1);
                float[] v = uniform(r, n * kw, -1, 1);
                if (roundKv) {
                    round(k);
                    round(v);
                }
                // The GPU q and out are column views of wider tensors (as in the model's fused projections).
                Tensor gq = gpu().fromHost(pad(q, n, qw, 3), n, qw + 3).columns(3, qw);
                Tensor gk = gpu().fromHost(k, n, kw);
                Tensor gv = gpu().fromHost(v, n, kw);
                Tensor gOutWide = poisoned(n, qw + 5);
                Tensor gOut = gOutWide.columns(5, qw);
                Tensor cq = cpu().fromHost(q, n, qw);
                Tensor ck = cpu().fromHost(k, n, kw);
                Tensor cv = cpu().fromHost(v, n, kw);
                Tensor cOut = cpu().allocate(n, qw);
                onCpu.attend(l, b, pages, cq, ck, cv, cOut);
                onGpu.attend(l, b, pages, gq, gk, gv, gOut);
                float[] expected = cpu().toHost(cOut);
                float[] actual = gpu().toHost(gOut);
                assertClose("attention", name + " " + what + " layer " + l.layer() + " (" + l.heads() + "/"
                        + l.kvHeads() + "x" + l.headDim() + (l.slidingWindow() > 0 ? " window " + l.slidingWindow()
                        : "") + (l.writesKv() ? "" : " shared") + ")", actual, expected, roundKv ? TIGHT : BF16);
            }
        }
    }

    private static float[] pad(float[] x, int rows, int cols, int left) {
        float[] out = new float[rows * (cols + left)];
        for (int i = 0; i < rows; i++) {
            System.arraycopy(x, i * cols, out, i * (cols + left) + left, cols);
        }
        return out;
    }

    private static void round(float[] x) {
        for (int i = 0; i < x.length; i++) {
            x[i] = DType.bf16ToFloat(DType.floatToBf16(x[i]));
        }
    }

    /** A sliding layer, a full layer, and a KV-shared reader of each. */
    private static List<AttentionLayer> gemmaLike(int window, int heads, int slidingKv, int fullKv) {
        return List.of(
                new AttentionLayer(0, 0, true, heads, slidingKv, 256, window, 1.0f),
                new AttentionLayer(1, 1, true, heads, fullKv, 512, 0, 1.0f),
                new AttentionLayer(2, 0, false, heads, slidingKv, 256, window, 1.0f),
                new AttentionLayer(3, 1, false, heads, fullKv, 512, 0, 1.0f));
    }

    /** Prefill, chunked prefill on top, then decode steps; sequences of mixed lengths. */
    private static void scenario(Run run) {
        run.batch("prefill", new int[][] {{0, 0, 37}, {1, 0, 5}, {2, 0, 1}, {3, 0, 70}});
        run.batch("chunked prefill", new int[][] {{0, 37, 20}, {1, 5, 64}, {4, 0, 9}});
        for (int step = 0; step < 3; step++) {
            int p0 = 57 + step;
            int p1 = 69 + step;
            int p3 = 70 + step;
            run.batch("decode " + step, new int[][] {{0, p0, 1}, {1, p1, 1}, {2, 1 + step, 1}, {3, p3, 1}});
        }
        run.batch("mixed", new int[][] {{4, 9, 1}, {0, 60, 3}, {2, 4, 30}});
    }

    private static KvGeometry geometry(int pageSize) {
        int pages = (512 + pageSize - 1) / pageSize * 8;
        return new KvGeometry(pageSize, pages, pages);
    }

    @Test
    void gemma31bLayoutsPage16() {
        scenario(new Run("31B page 16", gemmaLike(24, 32, 16, 4), geometry(16), true));
    }

    @Test
    void gqa32over16And4Page1() {
        scenario(new Run("page 1", gemmaLike(10, 32, 16, 4), geometry(1), true));
    }

    @Test
    void page64WindowsCrossingPages() {
        // Windows of 70 over pages of 64: every window of the longer sequences spans two or three pages.
        scenario(new Run("page 64", gemmaLike(70, 16, 8, 2), geometry(64), true));
    }

    @Test
    void unroundedKvWithinBf16() {
        scenario(new Run("unrounded page 16", gemmaLike(16, 8, 2, 1), geometry(16), false));
    }

    @Test
    void tinyHeads() {
        for (int hd : new int[] {16, 32, 64}) {
            List<AttentionLayer> layers = List.of(
                    new AttentionLayer(0, 0, true, 4, 2, hd, 8, 0.125f),
                    new AttentionLayer(1, 1, true, 4, 1, hd, 0, 1.0f),
                    new AttentionLayer(2, 1, false, 4, 1, hd, 0, 1.0f));
            scenario(new Run("head dim " + hd, layers, geometry(16), true));
        }
    }
}
