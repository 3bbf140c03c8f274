package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.randomBf16;
import static io.jemma.backend.cuda.GpuTests.tensor;
import static io.jemma.backend.cuda.GpuTests.uniform;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;

import io.jemma.backend.DType;
import io.jemma.backend.Positions;
import io.jemma.backend.QkvNormMode;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import io.jemma.model.config.RopeSpec;
import java.util.Locale;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Times each kernel at Gemma 4 31B's real shapes (decode: 1 token; prefill: 512) with CUDA events,
 * median of many runs after a warm-up, and reports the effective bandwidth (bytes each input read once
 * and each output written once, over the time) or the GEMM's TFLOP/s. The first line is the device's
 * copy ceiling (a 1 GiB device-to-device copy, bytes read + written), to compare against.
 * Not a pass/fail test: the figures go to the report for src-native-kernels/README.md.
 * Small decode cases are cache-resident and launch-bound: that is what graphs will address.
 */
@Tag("gpu")
class KernelTimingsGpuTest {
    private static final int WARMUP = 10;
    private static final int REPS = 50;

    private static double time(Runnable work) {
        return new EventTimer(gpu()).medianMillis(work, WARMUP, REPS) * 1000;   // debug sync off inside
    }

    private static void bandwidth(String what, long bytes, Runnable work) {
        double us = time(work);
        GpuReport.time("timing", what, us, String.format(Locale.ROOT, "%.0f GB/s", bytes / us / 1e3));
    }

    @Test
    void copyCeiling() {
        long bytes = 1L << 30;
        DeviceBuffer a = gpu().deviceBuffer(bytes);
        DeviceBuffer b = gpu().deviceBuffer(bytes);
        gpu().context().fill32(a, 0, bytes / 4, 0x3f800000);
        bandwidth("device copy 1 GiB (read + write)", 2 * bytes, () -> Cu.check(
                cuMemcpyDtoDAsync(b.pointer(0), a.pointer(0), bytes, gpu().context().stream()), "cuMemcpyDtoDAsync"));
    }

    @Test
    void norms() {
        SplittableRandom r = GpuTests.random("timing norms");
        Weight w = gpu().load(tensor("norm", DType.BF16, new long[] {5376}, uniform(r, 5376, 0.5, 1.5)));
        for (int rows : new int[] {1, 512}) {
            Tensor x = gpu().fromHost(uniform(r, rows * 5376, -2, 2), rows, 5376);
            Tensor h = gpu().fromHost(uniform(r, rows * 5376, -2, 2), rows, 5376);
            Tensor out = gpu().allocate(rows, 5376);
            long bytes = (long) rows * 5376 * 4;
            bandwidth("rmsNorm [" + rows + ", 5376]", 2 * bytes, () -> gpu().rmsNorm(x, w, 1e-6f, out));
            bandwidth("addRmsNorm [" + rows + ", 5376]", 3 * bytes, () -> gpu().addRmsNorm(h, x, w, 1e-6f));
        }
    }

    @Test
    void qkvNorm() {
        SplittableRandom r = GpuTests.random("timing qkvNorm");
        for (int tokens : new int[] {1, 512}) {
            for (QkvNormMode mode : new QkvNormMode[] {QkvNormMode.QKV, QkvNormMode.QK_EQ_V}) {
                int hd = mode == QkvNormMode.QKV ? 256 : 512;
                int kvHeads = mode == QkvNormMode.QKV ? 16 : 4;
                Weight qw = gpu().load(tensor("q", DType.BF16, new long[] {hd}, uniform(r, hd, 0.5, 1.5)));
                Weight kw = gpu().load(tensor("k", DType.BF16, new long[] {hd}, uniform(r, hd, 0.5, 1.5)));
                Tensor q = gpu().fromHost(uniform(r, tokens * 32 * hd, -2, 2), tokens, 32 * hd);
                Tensor k = gpu().fromHost(uniform(r, tokens * kvHeads * hd, -2, 2), tokens, kvHeads * hd);
                Tensor v = gpu().fromHost(uniform(r, tokens * kvHeads * hd, -2, 2), tokens, kvHeads * hd);
                int[] p = new int[tokens];
                for (int i = 0; i < tokens; i++) {
                    p[i] = 1000 + i;
                }
                Positions pos = new Positions(p);
                float[] inv = hd == 256 ? RopeSpec.defaultRope(1e4).inverseFrequencies(hd)
                        : RopeSpec.proportional(1e6, 0.25).inverseFrequencies(hd);
                long elems = (long) tokens * (32 + 2L * kvHeads) * hd;
                long bytes = mode == QkvNormMode.QKV ? 2 * elems * 4 : (2 * elems - (long) tokens * kvHeads * hd) * 4;
                bandwidth("qkvNorm " + mode + " 32/" + kvHeads + "x" + hd + " tokens " + tokens, bytes,
                        () -> gpu().qkvNorm(mode, q, k, v, hd, qw, kw, 1e-6f, pos, inv));
            }
        }
    }

    @Test
    void activations() {
        SplittableRandom r = GpuTests.random("timing activations");
        for (int rows : new int[] {1, 512}) {
            Tensor g = gpu().fromHost(uniform(r, rows * 21504, -3, 3), rows, 21504);
            Tensor u = gpu().fromHost(uniform(r, rows * 21504, -3, 3), rows, 21504);
            Tensor o = gpu().allocate(rows, 21504);
            bandwidth("geluTanhMul [" + rows + ", 21504]", 3L * rows * 21504 * 4, () -> gpu().geluTanhMul(g, u, o));
        }
        for (int rows : new int[] {1, 16}) {
            Tensor logits = gpu().fromHost(uniform(r, rows * 262_144, -50, 50), rows, 262_144);
            bandwidth("softcap [" + rows + ", 262144]", 2L * rows * 262_144 * 4, () -> gpu().softcap(logits, 30f));
        }
        Weight table = gpu().load(randomBf16(r, "embed", 4096, 5376, 1));
        int[] ids = new int[512];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.nextInt(4096);
        }
        Tensor e = gpu().allocate(512, 5376);
        bandwidth("embed 512 rows of [4096, 5376] bf16", 512L * 5376 * 6, () -> gpu().embed(table, ids, 73.5f, e));
    }

    @Test
    void gemm() {
        SplittableRandom r = GpuTests.random("timing gemm");
        int[][] shapes = {{21504, 5376}, {5376, 21504}, {8192, 5376}, {4096, 5376}};
        for (int[] s : shapes) {
            int out = s[0];
            int in = s[1];
            Weight w = gpu().load(randomBf16(r, "w", out, in, 1 / Math.sqrt(in)));
            for (int tokens : new int[] {1, 8, 512}) {
                Tensor x = gpu().fromHost(uniform(r, tokens * in, -2, 2), tokens, in);
                Tensor y = gpu().allocate(tokens, out);
                double us = time(() -> gpu().matmul(x, w, y));
                double flops = 2.0 * tokens * out * in;
                long bytes = (long) out * in * 2 + (long) tokens * (in * 6L + out * 4L);
                GpuReport.time("timing", "gemm " + tokens + " x [" + out + ", " + in + "]", us,
                        String.format(Locale.ROOT, "%.0f GB/s, %.1f TFLOP/s", bytes / us / 1e3, flops / us / 1e6));
            }
        }
    }

    /**
     * The attention backend at 31B's layouts (full: 32/4 x 512; sliding: 32/16 x 256, window 1024), page size 16:
     * a decode batch of 8 sequences at 4096 cached positions, and a 512-token prefill from position 0.
     * Bandwidth counts the K/V rows read once per (sequence, kv head), as a GQA-aware kernel would.
     */
    @Test
    void attention() {
        SplittableRandom r = GpuTests.random("timing attention");
        int pageSize = 16;
        io.jemma.attention.KvGeometry g = new io.jemma.attention.KvGeometry(pageSize, 8 * 4608 / pageSize,
                8 * 4608 / pageSize);
        io.jemma.attention.KvPages pages = io.jemma.attention.KvPages.ofSlots(pageSize, (seq, sliding, position) -> seq * 4608 + position);
        for (boolean sliding : new boolean[] {false, true}) {
            int kvHeads = sliding ? 16 : 4;
            int hd = sliding ? 256 : 512;
            io.jemma.attention.AttentionLayer layer = new io.jemma.attention.AttentionLayer(0, 0, true, 32, kvHeads,
                    hd, sliding ? 1024 : 0, 1.0f);
            io.jemma.attention.AttentionBackend a = gpu().attention(java.util.List.of(layer), g);
            int[][] decode = new int[8][];
            for (int s = 0; s < 8; s++) {
                decode[s] = new int[] {s, 4096, 1};
            }
            int[][][] cases = {decode, {{0, 0, 512}}};
            for (int[][] chunks : cases) {
                io.jemma.attention.ForwardBatch b = io.jemma.attention.ForwardBatch.of(chunks);
                int n = b.totalTokens();
                Tensor q = gpu().fromHost(uniform(r, n * 32 * hd, -1, 1), n, 32 * hd);
                Tensor k = gpu().fromHost(uniform(r, n * kvHeads * hd, -1, 1), n, kvHeads * hd);
                Tensor v = gpu().fromHost(uniform(r, n * kvHeads * hd, -1, 1), n, kvHeads * hd);
                Tensor o = gpu().allocate(n, 32 * hd);
                long visible = 0;
                for (int[] c : chunks) {
                    visible += Math.min(c[1] + c[2], sliding ? 1024 : Integer.MAX_VALUE);
                }
                long bytes = visible * kvHeads * hd * 2L * 2 + 2L * n * 32 * hd * 4;
                bandwidth("attention " + (sliding ? "sliding" : "full") + " 32/" + kvHeads + "x" + hd + " "
                        + (n == 8 ? "decode 8 x 4096" : "prefill 512"), bytes,
                        () -> a.attend(layer, b, pages, q, k, v, o));
            }
        }
    }
}
