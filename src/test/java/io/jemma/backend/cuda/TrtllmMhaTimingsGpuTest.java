package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.uniform;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.backend.DType;
import io.jemma.backend.Tensor;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Decode and verify attention of the trtllm_mha backend at batch 32, contexts 1k to 32k, Gemma 4 31B's
 * layouts without a window (head dim 256: 32/16 heads; 512: 32/4), page size 16 with the pages of every
 * sequence scattered over the pool: KV bytes read (each visible K/V row once per (sequence, KV head))
 * over the median time, against a device-to-device copy of 2 GiB timed in the same run (read + write
 * bytes over time). Verify: 4 query tokens per request at contexts >= 4k; the general backend
 * (triton: TritonAttention) on the same buffers beside it. Reported, not asserted.
 */
@Tag("gpu")
class TrtllmMhaTimingsGpuTest {
    private static final int WARMUP = 5;
    private static final int REPS = 30;
    private static final int BATCH = 32;
    private static final int MAX_CONTEXT = 32768;
    private static final int PAGE = 16;
    private static final int[] CONTEXTS = {1024, 2048, 4096, 8192, 16384, 32768};

    private static double micros(Runnable work) {
        return new EventTimer(gpu()).medianMillis(work, WARMUP, REPS) * 1000;   // debug sync off inside
    }

    /** The last {@code tokens} positions of each of the BATCH sequences at context {@code ctx}: a decode or verify step. */
    private static ForwardBatch lastTokens(int ctx, int tokens) {
        int[][] chunks = new int[BATCH][];
        for (int s = 0; s < BATCH; s++) {
            chunks[s] = new int[] {s, ctx - tokens, tokens};
        }
        return ForwardBatch.of(chunks);
    }

    /**
     * A timed step at 32 query heads: the batch of {@link #lastTokens}, random q {@code [n, 32 * hd]}, the output, the
     * K and V bytes it reads and its row label ("decode hd512 32/4 b32 ctx 8192", "verify 4 ...").
     */
    private record Step(ForwardBatch batch, Tensor q, Tensor out, long kvBytes, String what) {
        /** The median time of this step's attention by {@code backend} (its beginStep done), in microseconds. */
        double time(AttentionBackend backend, AttentionLayer reader, KvPages pages) {
            return micros(() -> backend.attend(reader, batch, pages, q, null, null, out));
        }

        /** The KV bytes it reads per second over {@code us} microseconds, in GB/s. */
        double gbs(double us) {
            return kvBytes / us / 1e3;
        }

        static Step of(SplittableRandom r, int ctx, int tokens, int hd, int kvHeads) {
            ForwardBatch b = lastTokens(ctx, tokens);
            int n = b.totalTokens();
            return new Step(b, gpu().fromHost(uniform(r, n * 32 * hd, -1, 1), n, 32 * hd), gpu().allocate(n, 32 * hd),
                    (long) BATCH * ctx * kvHeads * hd * 2 * 2,
                    (tokens == 1 ? "decode" : "verify " + tokens) + " hd" + hd + " 32/" + kvHeads + " b32 ctx " + ctx);
        }
    }

    /** Page tables of BATCH sequences of up to MAX_CONTEXT positions, pages shuffled over the pool. */
    private static KvPages scatteredPages(SplittableRandom r) {
        return shuffledPages(r, BATCH, MAX_CONTEXT / PAGE);
    }

    private static final long BLOCK = 64L << 20;

    /** Random bf16 over a whole buffer: 64 MB uploaded once, then copied along on the device. */
    private static void randomFill(SplittableRandom r, DeviceBuffer dst, long bytes) {
        copyFill(randomBlock(r), dst, bytes);
    }

    /** 64 MB of random bf16 on the device. */
    private static DeviceBuffer randomBlock(SplittableRandom r) {
        DeviceBuffer src = gpu().deviceBuffer(BLOCK);
        ValueLayout.OfShort le = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        gpu().context().transfers().upload((offset, seg) -> {
            for (long i = 0; i + 1 < seg.byteSize(); i += 2) {
                seg.set(le, i, DType.floatToBf16((float) (r.nextDouble() * 2 - 1)));
            }
        }, BLOCK, src, 0);
        return src;
    }

    /** {@code bytes} of {@code dst} from the 64 MB block, repeated. */
    private static void copyFill(DeviceBuffer src, DeviceBuffer dst, long bytes) {
        long block = BLOCK;
        for (long at = 0; at < bytes; at += block) {
            long n = Math.min(block, bytes - at);
            Cu.check(cuMemcpyDtoDAsync(dst.pointer(at), src.pointer(0), n, gpu().context().stream()),
                    "cuMemcpyDtoDAsync");
        }
        gpu().synchronize();
    }

    @Test
    void decodeAndVerifyAgainstCopyBandwidth() {
        SplittableRandom r = GpuTests.random("trtllm_mha timings");
        CudaContext context = gpu().context();
        long copyBytes = 2L << 30;
        double copyGbs = DeviceBench.copyGBps(gpu(), copyBytes, REPS);
        GpuReport.time("xqa", "device copy 2 GiB (read + write)", 2.0 * copyBytes / copyGbs / 1e3,
                String.format(Locale.ROOT, "%.0f GB/s", copyGbs));
        KvPages pages = scatteredPages(r);
        // -Djemma.xqa.timings-hd=512 times one head dim; -Djemma.xqa.timings-sweeps=false leaves out the
        // forced split and round rows (short device calls).
        int onlyHd = Integer.getInteger("jemma.xqa.timings-hd", 0);
        boolean sweeps = Boolean.parseBoolean(System.getProperty("jemma.xqa.timings-sweeps", "true"));
        for (int hd : new int[] {256, 512}) {
            if (onlyHd != 0 && hd != onlyHd) {
                continue;
            }
            int kvHeads = hd == 256 ? 16 : 4;
            AttentionLayer writer = new AttentionLayer(0, 0, true, 32, kvHeads, hd, 0, 1.0f);
            AttentionLayer reader = new AttentionLayer(0, 0, false, 32, kvHeads, hd, 0, 1.0f);
            KvGeometry g = new KvGeometry(PAGE, BATCH * MAX_CONTEXT / PAGE, 1);
            TritonAttention general = new TritonAttention(context, List.of(writer), g);
            PagedKvBuffers kv = general.buffers();
            long cacheBytes = g.fullSlots() * kvHeads * hd * 2;
            randomFill(r, kv.keysOf(0), cacheBytes);
            randomFill(r, kv.valuesOf(0), cacheBytes);
            TrtllmMhaAttention xqa = new TrtllmMhaAttention(context, List.of(writer), PAGE, kv, general);
            for (int ctx : CONTEXTS) {
                // 1 and 4 tokens; at 8k also 2 and 3 (and 8 at head dim 256): how the time grows with the rows.
                int[] tokenCounts = ctx != 8192 ? new int[] {1, 4} : hd == 512 ? new int[] {1, 2, 3, 4}
                        : new int[] {1, 2, 4, 8};
                for (int tokens : tokenCounts) {
                    if (tokens > 1 && ctx < 4096) {
                        continue;
                    }
                    Step step = Step.of(r, ctx, tokens, hd, kvHeads);
                    xqa.beginStep(step.batch(), pages);
                    double us = step.time(xqa, reader, pages);
                    double gbs = step.gbs(us);
                    GpuReport.time("xqa", "trtllm_mha " + step.what(), us, String.format(Locale.ROOT,
                            "%.0f GB/s, %.0f%% of copy", gbs, 100 * gbs / copyGbs));
                    if (hd == 512 && tokens >= 3) {
                        // 32 query rows: each variant forced (the default is one of these).
                        for (TrtllmMhaAttention.Rows32 v : TrtllmMhaAttention.Rows32.values()) {
                            xqa.forceRows32(v);
                            double pus = step.time(xqa, reader, pages);
                            GpuReport.time("xqa", "  " + v + ": " + step.what(), pus, String.format(Locale.ROOT,
                                    "%.0f%% of copy", 100 * step.gbs(pus) / copyGbs));
                        }
                        xqa.forceRows32(null);
                    }
                    if (sweeps && tokens == 1 && (ctx == 8192 || ctx == 32768)) {
                        // How the split count moves the time (the heuristic chose one of these above).
                        for (int splits : new int[] {1, 2, 3, 4, 6}) {
                            xqa.forceSplits(splits);
                            double sus = step.time(xqa, reader, pages);
                            GpuReport.time("xqa", "  splits " + splits + ": " + step.what(), sus,
                                    String.format(Locale.ROOT, "%.0f%% of copy", 100 * step.gbs(sus) / copyGbs));
                        }
                        xqa.forceSplits(0);
                    }
                    if (sweeps && tokens <= 2 && (ctx == 2048 || ctx == 8192 || ctx == 32768)) {
                        // Wide rounds forced at batch 32 (the default takes them only at small batches).
                        for (int rounds : new int[] {1, 2, 4}) {
                            xqa.forceRounds(rounds);
                            double rus = step.time(xqa, reader, pages);
                            GpuReport.time("xqa", "  rounds " + rounds + ": " + step.what(), rus,
                                    String.format(Locale.ROOT, "%.0f%% of copy", 100 * step.gbs(rus) / copyGbs));
                        }
                        xqa.forceRounds(0);
                    }
                    if (tokens == 1 || tokens == 4) {
                        general.beginStep(step.batch(), pages);
                        double gus = step.time(general, reader, pages);
                        GpuReport.time("xqa", "triton " + step.what(), gus, String.format(Locale.ROOT,
                                "%.0f GB/s, %.0f%% of copy; trtllm_mha %.2fx its speed", step.gbs(gus),
                                100 * step.gbs(gus) / copyGbs, gus / us));
                    }
                }
            }
        }
    }

    /**
     * K stored once (jemma.kv-store-k-eq-v-once) at the 31B full layer's shape (head dim 512, 32/4 heads): decode
     * (and verify of 4 at contexts >= 4k) at batch 32, contexts 1k to 32k, each backend over a cache holding K and V
     * against one holding V only whose keys the kernels derive (a quarter of the pairs rotating). Bytes: what each
     * reads (K and V, or V only); "time x" is the derived run's time over the stored one's.
     */
    @Test
    void keysStoredOnceDecode() {
        SplittableRandom r = GpuTests.random("keys stored once timings");
        CudaContext context = gpu().context();
        double copyGbs = DeviceBench.copyGBps(gpu(), 2L << 30, REPS);
        KvPages pages = scatteredPages(r);
        int hd = 512;
        int kvHeads = 4;
        AttentionLayer writer = new AttentionLayer(0, 0, true, 32, kvHeads, hd, 0, 1.0f);
        AttentionLayer reader = new AttentionLayer(0, 0, false, 32, kvHeads, hd, 0, 1.0f);
        KvGeometry g = new KvGeometry(PAGE, BATCH * MAX_CONTEXT / PAGE, 1);
        long cacheBytes = g.fullSlots() * kvHeads * hd * 2;
        KeysFromValuesTests derivation = new KeysFromValuesTests(r, List.of(writer));
        TritonAttention stored = new TritonAttention(context, List.of(writer), g);
        TritonAttention derived = new TritonAttention(context, List.of(writer), g, derivation.sources);
        DeviceBuffer random = randomBlock(r);
        copyFill(random, stored.buffers().keysOf(0), cacheBytes);
        copyFill(random, stored.buffers().valuesOf(0), cacheBytes);
        copyFill(random, derived.buffers().valuesOf(0), cacheBytes);
        TrtllmMhaAttention storedXqa = new TrtllmMhaAttention(context, List.of(writer), PAGE, stored.buffers(), stored);
        TrtllmMhaAttention derivedXqa = new TrtllmMhaAttention(context, List.of(writer), PAGE, derived.buffers(),
                derived);
        for (int ctx : CONTEXTS) {
            for (int tokens : new int[] {1, 4}) {
                if (tokens > 1 && ctx < 4096) {
                    continue;
                }
                Step step = Step.of(r, ctx, tokens, hd, kvHeads);
                for (String backend : new String[] {"trtllm_mha", "triton"}) {
                    double[] us = new double[2];
                    for (int once = 0; once < 2; once++) {
                        var attention = backend.equals("triton") ? (once == 0 ? stored : derived)
                                : (once == 0 ? storedXqa : derivedXqa);
                        attention.beginStep(step.batch(), pages);
                        us[once] = step.time(attention, reader, pages);
                    }
                    GpuReport.time("k-once", backend + " " + step.what() + ": K and V", us[0],
                            String.format(Locale.ROOT, "%.0f%% of copy", 100 * step.gbs(us[0]) / copyGbs));
                    GpuReport.time("k-once", backend + " " + step.what() + ": V only, K derived", us[1],
                            String.format(Locale.ROOT, "time x %.2f; V bytes %.0f%% of copy, K+V equivalent %.0f%%",
                                    us[1] / us[0], 100 * step.kvBytes() / 2 / us[1] / 1e3 / copyGbs,
                                    100 * step.gbs(us[1]) / copyGbs));
                }
            }
        }
    }

    /**
     * Small batches at 2k (31B's decode step of tools/gpu/profile.sh): one layer's attention with its
     * split merge, per split count, timed as CUDA graph replays over LAYERS distinct layers' KV (134 MB:
     * no layer's KV stays in L2 between its launches, as in the model); the figure is per layer. Sliding
     * layers: head dim 256, 32/16 heads, window 1024; full layers: 512, 32/4. The KV read floor is the
     * KV bytes over the copy bandwidth measured here.
     */
    @Test
    void smallBatchSplitSweep() {
        SplittableRandom r = GpuTests.random("trtllm_mha small batch");
        CudaContext context = gpu().context();
        final int layers = 8;
        final int ctx = 2048;
        double copyGbs = DeviceBench.copyGBps(gpu(), 1L << 30, REPS);
        for (int hd : new int[] {256, 512}) {
            int kvHeads = hd == 256 ? 16 : 4;
            int window = hd == 256 ? 1024 : 0;
            List<AttentionLayer> writers = new java.util.ArrayList<>();
            List<AttentionLayer> readers = new java.util.ArrayList<>();
            for (int i = 0; i < layers; i++) {
                writers.add(new AttentionLayer(i, i, true, 32, kvHeads, hd, window, 1.0f));
                readers.add(new AttentionLayer(i, i, false, 32, kvHeads, hd, window, 1.0f));
            }
            int maxBatch = 8;
            int pagesPerSeq = ctx / PAGE + 1;
            int pool = maxBatch * pagesPerSeq;
            KvGeometry g = new KvGeometry(PAGE, pool, pool);
            TritonAttention general = new TritonAttention(context, writers, g);
            PagedKvBuffers kv = general.buffers();
            DeviceBuffer random = randomBlock(r);
            for (int i = 0; i < layers; i++) {
                long bytes = kv.slotsOf(i) * kvHeads * hd * 2;
                copyFill(random, kv.keysOf(i), bytes);
                copyFill(random, kv.valuesOf(i), bytes);
            }
            TrtllmMhaAttention xqa = new TrtllmMhaAttention(context, writers, PAGE, kv, general);
            KvPages pages = shuffledPages(r, maxBatch, pagesPerSeq);
            for (int batch : new int[] {1, 8}) {
                int[][] chunks = new int[batch][];
                for (int s = 0; s < batch; s++) {
                    chunks[s] = new int[] {s, ctx - 1, 1};
                }
                ForwardBatch b = ForwardBatch.of(chunks);
                Tensor q = gpu().fromHost(uniform(r, batch * 32 * hd, -1, 1), batch, 32 * hd);
                Tensor out = gpu().allocate(batch, 32 * hd);
                long kvBytes = (long) batch * Math.min(ctx, window > 0 ? window : ctx) * kvHeads * hd * 2 * 2;
                double floorUs = kvBytes / copyGbs / 1e3;
                xqa.beginStep(b, pages);
                int[] splitCounts = batch == 1 ? new int[] {0, 4, 8, 12, 16, 24, 32, 48}
                        : new int[] {0, 1, 2, 3, 4, 8, 16};
                for (int rounds : new int[] {0, 1, 2, 4}) {
                    xqa.forceRounds(rounds);
                    for (int splits : splitCounts) {
                        xqa.forceSplits(splits);
                        Runnable all = () -> {
                            for (AttentionLayer l : readers) {
                                xqa.attend(l, b, pages, q, null, null, out);
                            }
                        };
                        all.run();
                        double us;
                        try (CudaGraph graph = gpu().capture(all)) {
                            us = micros(graph::replay) / layers;
                        }
                        GpuReport.time("xqa-b" + batch, String.format(Locale.ROOT, "hd%d b%d ctx %d r%s splits %s", hd,
                                batch, ctx, rounds == 0 ? "auto" : String.valueOf(rounds),
                                splits == 0 ? "auto" : String.valueOf(splits)), us, String.format(Locale.ROOT,
                                "floor %.1f us (%.0f%% of copy)", floorUs, 100 * floorUs / us));
                    }
                }
                xqa.forceSplits(0);
                xqa.forceRounds(0);
            }
        }
    }

    /** Page tables of {@code sequences} x {@code perSequence} pages shuffled over the pool, both pools alike. */
    private static KvPages shuffledPages(SplittableRandom r, int sequences, int perSequence) {
        int[] physical = new int[sequences * perSequence];
        for (int i = 0; i < physical.length; i++) {
            physical[i] = i;
        }
        for (int i = physical.length - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = physical[i];
            physical[i] = physical[j];
            physical[j] = t;
        }
        return new KvPages() {
            @Override
            public int slot(int sequenceId, boolean sliding, int position) {
                return page(sequenceId, sliding, position / PAGE) * PAGE + position % PAGE;
            }

            @Override
            public int pageSize() {
                return PAGE;
            }

            @Override
            public int page(int sequenceId, boolean sliding, int logicalPage) {
                return logicalPage < perSequence ? physical[sequenceId * perSequence + logicalPage] : -1;
            }
        };
    }
}
