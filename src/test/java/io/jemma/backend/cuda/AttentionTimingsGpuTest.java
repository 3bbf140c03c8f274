package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.gpu;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD16Async;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.backend.Tensor;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The attention benchmarks of the attention issue, on the backend {@code gpu().attention(...)} returns
 * (TritonAttention), reported as {@code time} rows, not asserted. Ceilings measured in the same run first:
 * device copy bandwidth (a 2 GiB cuMemcpyDtoD, bytes read + written) and cuBLASLt's bf16 GEMM rate
 * (8192^3, bf16 in, fp32 out). Then at 31B's head shapes (32 query heads; 16 kv heads x 256, 4 kv heads x
 * 512), full attention without a window, page size 16 with pages scattered at random:
 * <ul>
 *   <li>decode at batch 32 and contexts 1k to 32k: KV bytes read (every visible K and V row once per
 *       (sequence, kv head)) over the time, against the copy bandwidth;
 *   <li>verify of 4 tokens per request at the same contexts;
 *   <li>prefill of 8192 tokens, causal: TFLOP/s (4 * q * kv / 2 * headDim * heads) against the GEMM rate;
 *   <li>and the 31B sliding layer's decode (window 1024) at 32k, for scale.
 * </ul>
 * The timed call is a KV-shared layer reading the written layer's cache: attention alone, no K/V store.
 */
@Tag("gpu")
class AttentionTimingsGpuTest {
    private static final int[] CONTEXTS = {1024, 2048, 4096, 8192, 16384, 32768};
    private static final int BATCH = 32;
    private static final int PAGE = 16;

    private static double copyGbs;
    private static double gemmTflops;

    private static double micros(Runnable work, int reps) {
        CudaContext context = gpu().context();
        boolean saved = context.debugSync();
        context.debugSync(false);
        try {
            return new EventTimer(gpu()).medianMillis(work, 3, reps) * 1000;
        } finally {
            context.debugSync(saved);
        }
    }

    private static synchronized void ceilings() {
        if (copyGbs > 0) {
            return;
        }
        CudaContext context = gpu().context();
        long bytes = 2L << 30;
        DeviceBuffer a = context.memory().allocatePermanent(bytes);
        DeviceBuffer b = context.memory().allocatePermanent(bytes);
        context.fill32(a, 0, bytes / 4, 0x3f800000);
        double us = micros(() -> Cu.check(cuMemcpyDtoDAsync(b.pointer(0), a.pointer(0), bytes, context.stream()),
                "cuMemcpyDtoDAsync"), 20);
        copyGbs = 2.0 * bytes / us / 1e3;
        GpuReport.time("attn-time", "device copy 2 GiB (read + write)", us, String.format(Locale.ROOT, "%.0f GB/s",
                copyGbs));

        int n = 8192;
        DeviceBuffer x = context.memory().allocatePermanent((long) n * n * 2);
        DeviceBuffer w = context.memory().allocatePermanent((long) n * n * 2);
        DeviceBuffer y = context.memory().allocatePermanent((long) n * n * 4);
        DeviceBuffer ws = context.memory().allocatePermanent(CublasLt.WORKSPACE_BYTES);
        Cu.check(cuMemsetD16Async(x.pointer(0), (short) 0x3c00, (long) n * n, context.stream()), "memset");
        Cu.check(cuMemsetD16Async(w.pointer(0), (short) 0x3c00, (long) n * n, context.stream()), "memset");
        try (CublasLt lt = new CublasLt()) {
            CublasLt.GemmKey key = new CublasLt.GemmKey(n, n, n, n, n, n, 256, 256, 256);
            double gemmUs = micros(() -> lt.gemm(key, w.address(), x.address(), y.address(), ws,
                    context.stream().handle()), 20);
            gemmTflops = 2.0 * n * n * n / gemmUs / 1e6;
            GpuReport.time("attn-time", "cuBLASLt bf16 GEMM 8192^3 (fp32 out)", gemmUs,
                    String.format(Locale.ROOT, "%.0f TFLOP/s", gemmTflops));
        }
    }

    /** A written layer and a KV-shared reader of it (the one timed). */
    record Setup(AttentionLayer writer, AttentionLayer reader, AttentionBackend backend, KvPages pages) {
    }

    static Setup setup(int kvHeads, int headDim, int window, int sequences, int positions) {
        int perSeq = (positions + PAGE - 1) / PAGE;
        int pagesTotal = sequences * perSeq;
        KvGeometry g = new KvGeometry(PAGE, pagesTotal, window > 0 ? pagesTotal : 0);
        AttentionLayer writer = new AttentionLayer(0, 0, true, 32, kvHeads, headDim, window, 1.0f);
        AttentionLayer reader = new AttentionLayer(1, 0, false, 32, kvHeads, headDim, window, 1.0f);
        AttentionBackend backend = gpu().attention(List.of(writer, reader), g);
        // Pages scattered at random, as after a while of serving.
        int[] perm = new int[pagesTotal];
        for (int i = 0; i < pagesTotal; i++) {
            perm[i] = i;
        }
        SplittableRandom r = GpuTests.random("attention timing pages");
        for (int i = pagesTotal - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        KvPages pages = KvPages.ofSlots(PAGE, (seq, sliding, pos) -> perm[seq * perSeq + pos / PAGE] * PAGE + pos % PAGE);
        // Small finite values everywhere (bf16 2^-7): the timing does not depend on them.
        TritonAttention t = (TritonAttention) backend;
        CudaContext context = gpu().context();
        for (DeviceBuffer buf : new DeviceBuffer[] {t.buffers().keysOf(0), t.buffers().valuesOf(0)}) {
            Cu.check(cuMemsetD16Async(buf.pointer(0), (short) 0x3c00, buf.bytes() / 2, context.stream()), "memset");
        }
        return new Setup(writer, reader, backend, pages);
    }

    private static double time(Setup s, ForwardBatch b, int reps) {
        return time(s, b, reps, false);
    }

    /** @param bf16Q q held only as its bf16 copy (CudaBackend.BF16_Q; the sm_90a _bq kernels read it as is) */
    private static double time(Setup s, ForwardBatch b, int reps, boolean bf16Q) {
        int n = b.totalTokens();
        int qw = 32 * s.reader().headDim();
        Tensor q = gpu().fromHost(GpuTests.uniform(new SplittableRandom(1), n * qw, -0.3, 0.3), n, qw);
        if (bf16Q) {
            CudaTensor t = gpu().allocateBf16Output(n, qw);
            new ActivationKernels(gpu().context()).toBf16((CudaTensor) q, t.operand().address());
            t.operand().currentOnly();
            q = t;
        }
        Tensor qIn = q;
        Tensor out = gpu().allocate(n, qw);
        s.backend().beginStep(b, s.pages());
        return micros(() -> s.backend().attend(s.reader(), b, s.pages(), qIn, null, null, out), reps);
    }

    private static String bandwidth(long bytes, double us) {
        double gbs = bytes / us / 1e3;
        return String.format(Locale.ROOT, "%.0f GB/s, %.0f%% of copy", gbs, 100 * gbs / copyGbs);
    }

    @Test
    void decodeAndVerifyAtBatch32() {
        ceilings();
        for (int[] shape : new int[][] {{16, 256}, {4, 512}}) {
            int kvHeads = shape[0];
            int hd = shape[1];
            Setup s = setup(kvHeads, hd, 0, BATCH, CONTEXTS[CONTEXTS.length - 1]);
            for (int ctx : CONTEXTS) {
                for (int tokens : new int[] {1, 4}) {
                    int[][] chunks = new int[BATCH][];
                    for (int i = 0; i < BATCH; i++) {
                        chunks[i] = new int[] {i, ctx - tokens, tokens};
                    }
                    ForwardBatch b = ForwardBatch.of(chunks);
                    double us = time(s, b, ctx >= 16384 ? 10 : 30);
                    long bytes = (long) BATCH * ctx * kvHeads * hd * 2 * 2;
                    GpuReport.time("attn-time", String.format(Locale.ROOT, "%s 32/%dx%d batch 32 ctx %d",
                            tokens == 1 ? "decode" : "verify 4", kvHeads, hd, ctx), us, bandwidth(bytes, us));
                    if (ctx == 8192 || ctx == 32768) {
                        // The alternative kernels for this case (TritonAttention.ALTERNATIVES).
                        int rows = tokens * (32 / kvHeads);
                        for (String alt : TritonAttention.ALTERNATIVES) {
                            TritonAttention.Variant v = TritonAttention.VARIANTS.stream()
                                    .filter(x -> x.kernel().equals(alt)).findFirst().orElseThrow();
                            if (!alt.contains("decode") || v.headDimBucket() != hd
                                    || v.rows() != TritonAttention.decodeVariant(hd, rows).rows()) {
                                continue;
                            }
                            TritonAttention t = (TritonAttention) s.backend();
                            t.useVariants(alt, null);
                            double altUs = time(s, b, ctx >= 16384 ? 10 : 30);
                            t.useVariants(null, null);
                            GpuReport.time("attn-time", String.format(Locale.ROOT, "  alt %s ctx %d", alt, ctx),
                                    altUs, bandwidth(bytes, altUs));
                        }
                    }
                }
            }
        }
    }

    /** One sequence at 32k: few (sequence, kv head) blocks, so the decode kernels split the keys and merge. */
    @Test
    void decodeBatch1At32k() {
        ceilings();
        for (int[] shape : new int[][] {{16, 256}, {4, 512}}) {
            Setup s = setup(shape[0], shape[1], 0, 1, 32768);
            double us = time(s, ForwardBatch.of(new int[][] {{0, 32767, 1}}), 30);
            GpuReport.time("attn-time", String.format(Locale.ROOT, "decode 32/%dx%d batch 1 ctx 32768 (split-KV)",
                    shape[0], shape[1]), us, bandwidth(32768L * shape[0] * shape[1] * 4, us));
        }
    }

    @Test
    void slidingDecodeAt32k() {
        ceilings();
        Setup s = setup(16, 256, 1024, BATCH, 32768);
        int[][] chunks = new int[BATCH][];
        for (int i = 0; i < BATCH; i++) {
            chunks[i] = new int[] {i, 32767, 1};
        }
        double us = time(s, ForwardBatch.of(chunks), 30);
        GpuReport.time("attn-time", "decode sliding 1024 32/16x256 batch 32 ctx 32768", us,
                bandwidth((long) BATCH * 1024 * 16 * 256 * 4, us));
    }

    @Test
    void prefill8kCausal() {
        ceilings();
        int n = 8192;
        ForwardBatch b = ForwardBatch.of(new int[][] {{0, 0, n}});
        // Causal at both head dims, then the 31B's sliding layers: window 1024 (each row sees min(i + 1, 1024)
        // keys). Per case: the table's kernel (sm_90a on Hopper) first, then the sm_90a alternatives ("_base":
        // session 3's default), the mma.sync kernel; the persistent kernels last, after every other row
        // (a persistent kernel that traps takes the process's CUDA context with it).
        int w = 1024;
        Setup[] setups = {setup(16, 256, 0, 1, n), setup(4, 512, 0, 1, n), setup(16, 256, w, 1, n)};
        double[] flops = {4.0 * n * n / 2 * 256 * 32, 4.0 * n * n / 2 * 512 * 32,
                4.0 * ((double) n * w - (double) w * (w - 1) / 2) * 256 * 32};
        String[] names = {"prefill 8192 causal 32/16x256", "prefill 8192 causal 32/4x512",
                "prefill 8192 window 1024 32/16x256"};
        for (boolean persistent : new boolean[] {false, true}) {
            for (int i = 0; i < setups.length; i++) {
                int hd = setups[i].reader().headDim();
                List<String> kernels = new java.util.ArrayList<>();
                if (!persistent) {
                    kernels.add("");
                }
                for (String suffix : TritonAttention.SM90_SUFFIXES) {
                    if (!GpuTests.sm90SuffixSelected(suffix)) {
                        continue;
                    }
                    boolean exists = suffix.equals(TritonAttention.SM90_PLAIN) || TritonAttention.SM90_KERNELS.stream()
                            .anyMatch(k -> k.name().equals("jemma_attn_extend_sm90_hd" + hd + suffix));
                    if (exists && suffix.contains("persist") == persistent && (i < 2 || WINDOW_ROWS.contains(suffix))) {
                        kernels.add(suffix);
                    }
                }
                if (!persistent) {
                    kernels.add("jemma_attn_extend_hd" + hd);
                }
                for (String kernel : kernels) {
                    double us = timeSm90(setups[i], b, kernel);
                    double tflops = flops[i] / us / 1e6;
                    String label = i < 2 && !kernel.isEmpty() ? "  alt " + names[i] : names[i];
                    GpuReport.time("attn-time", label + label(kernel), us, String.format(Locale.ROOT,
                            "%.0f TFLOP/s, %.0f%% of cuBLAS", tflops, 100 * tflops / gemmTflops));
                    if (kernel.isEmpty()) {
                        // The default kernel's _bq form: q only as bf16 (CudaBackend.BF16_Q, the prefill's QKV norm).
                        double bq = time(setups[i], b, 10, true);
                        double bqTflops = flops[i] / bq / 1e6;
                        GpuReport.time("attn-time", names[i] + " bf16 q", bq, String.format(Locale.ROOT,
                                "%.0f TFLOP/s, %.0f%% of cuBLAS", bqTflops, 100 * bqTflops / gemmTflops));
                    }
                }
            }
        }
    }

    /** The alternatives timed at window 1024 too. */
    private static final List<String> WINDOW_ROWS = List.of("_base", "_async", "_n80", "_persist", "_plain", "_cluster",
            "_tma");

    /**
     * Times one prefill with the given extend kernel: "" the default; a suffix ("_serial"...) an sm_90a
     * alternative; a full name: that mma.sync kernel. Leaves the backend at its defaults.
     */
    private static double timeSm90(Setup s, ForwardBatch b, String kernel) {
        TritonAttention t = (TritonAttention) s.backend();
        boolean mmaSync = kernel.startsWith("jemma_");
        t.useVariants(null, mmaSync ? kernel : null);
        t.useSm90Extend(!mmaSync);
        t.useSm90Variant(mmaSync ? "" : kernel);
        try {
            return time(s, b, 10);
        } finally {
            t.useVariants(null, null);
            t.useSm90Extend(true);
            t.useSm90Variant("");
        }
    }

    private static String label(String kernel) {
        return kernel.isEmpty() ? "" : " " + kernel.replace("jemma_attn_", "");
    }
}
