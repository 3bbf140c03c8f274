package io.jemma.backend.cuda;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionDispatch;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvPages;
import io.jemma.attention.SequenceChunk;
import io.jemma.attention.TrtllmMhaLimits;
import io.jemma.backend.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * The specialized attention backend "trtllm_mha" (attention_xqa.cu, XQA-style): decode and causal draft
 * chains of up to {@link #maxTokens()} query tokens per request, one thread block per (request, KV head)
 * serving the whole query group and every token of the chain from one pass over the KV pages, with the
 * keys split over several blocks when few (request, KV head) pairs would leave the GPU idle.
 *
 * <p>It reads and writes the same paged KV buffers ({@link PagedKvBuffers}) and step metadata
 * ({@link AttentionMetadata}) as the general backend, which serves what it was not compiled for: prefill
 * and extend chunks of more query tokens, and draft trees. A mixed step works: when the chunks it does
 * not serve are one run of consecutive rows, the general backend gets that run alone (row views of the
 * same tensors); otherwise it gets the whole step. Which variants exist is data
 * ({@link TrtllmMhaLimits#COMPILED}); {@link AttentionDispatch} only picks this backend within them, and
 * the constructor refuses layers outside them.
 */
final class TrtllmMhaAttention implements AttentionBackend {
    static final TrtllmMhaLimits LIMITS = TrtllmMhaLimits.COMPILED;
    private static final int TILE_KEYS = 16;
    /** Each split of a sequence's keys gets at least this many tiles of 16 keys. */
    private static final int MIN_TILES_PER_SPLIT = 4;
    private static final int MAX_SPLITS = 64;
    /** Arrival counters per (chunk, KV head): the pair's, and one per merge group of 8 splits (attention_xqa.cu). */
    private static final int COUNTERS_PER_PAIR = 1 + MAX_SPLITS / 8;
    /** Splits per first-level merge group (attention_xqa.cu MERGE_GROUP): one level up to this many. */
    static final int MERGE_GROUP = 8;
    /** Block-table entries in the RING variants' shared-memory ring (attention_xqa.cu TABLE_RING). */
    private static final int TABLE_RING = 64;

    /**
     * The variants at head dim 512 with 32 query rows (verify of 3-4 tokens at 32/4 heads; one block per
     * SM): attention_xqa.cu's Shape PIPE (pipelined rounds with that many warps) and RING (the block
     * table read through a shared-memory ring, 32 tiles ahead of the copies).
     */
    enum Rows32 {
        PLAIN("", 1, 0, false),
        RING("_ring", 1, 0, true),
        PIPELINED_RING("_pipe8_ring", 1, 8, true),
        /** Two tiles per round (8 warps, 5 stages) with the ring. */
        WIDE_RING("_r2_ring", 2, 0, true);

        final String suffix;
        final int tpr;
        final int pipe;
        final boolean ring;

        Rows32(String suffix, int tpr, int pipe, boolean ring) {
            this.suffix = suffix;
            this.tpr = tpr;
            this.pipe = pipe;
            this.ring = ring;
        }
    }

    /**
     * The 32-row variant taken by default: two tiles per round with the block table read through the shared-memory
     * ring. On the H200 (batch 32, verify 4 at head dim 512, 4k / 8k / 16k / 32k) 74 / 76 / 77 / 72% of copy against
     * PLAIN's 64 / 66 / 66 / 63% in the same call (NOTES.md, trtllm_mha, run 7).
     */
    static final Rows32 DEFAULT_ROWS32 = Rows32.WIDE_RING;
    private static final float LOG2E = 1.4426950408889634f;

    /** How the step's chunks are shared with the general backend. */
    private enum Plan {
        /** Every chunk is served here. */
        NONE,
        /** The chunks served by the general backend are one run of consecutive rows. */
        RUN,
        /** The general backend serves the whole step. */
        ALL
    }

    private final CudaContext context;
    private final PagedKvBuffers kv;
    private final AttentionMetadata metadata;
    private final AttentionBackend general;
    /** Widens a bf16-only q (CudaBackend.BF16_Q) before this backend's own kernels read it. */
    private final ActivationKernels activations;
    private final int pageSize;
    private final int maxTokens;
    /** Splits per (chunk, KV head) when positive, instead of {@link #splits} (timing experiments). */
    private int forcedSplits;
    /**
     * Tiles of 16 keys per round when positive, instead of {@link #roundTiles} (timings, tests; the system
     * property jemma.cuda.xqa-rounds sets it for a whole run, e.g. 1 for the benchmark without wide rounds).
     */
    private int forcedRounds = Integer.getInteger("jemma.cuda.xqa-rounds", 0);
    /**
     * The 32-row variant at head dim 512 instead of {@link #DEFAULT_ROWS32} when set (timings, tests; the
     * system property jemma.cuda.xqa-rows32, e.g. PLAIN, sets it for a whole run).
     */
    private Rows32 forcedRows32 = System.getProperty("jemma.cuda.xqa-rows32") == null ? null
            : Rows32.valueOf(System.getProperty("jemma.cuda.xqa-rows32"));

    // The step (beginStep): which chunks are served here, and the general backend's share.
    private ForwardBatch batch;
    private boolean[] served;
    private int servedChunks;
    private int servedMaxTokens;
    private Plan plan = Plan.NONE;
    private ForwardBatch delegated;
    private int delegatedFirstRow;
    /** One layer per distinct launch shape (group, head dim, kv heads, window): what graphKey looks at. */
    private final java.util.Map<List<Integer>, AttentionLayer> launchShapes = new java.util.LinkedHashMap<>();
    /** Split partials. */
    private final GrowOnlyWorkspace partials;
    /**
     * Split arrivals: one uint32 per (chunk, KV head), zero between launches (the last block of each
     * pair merges the partials and puts it back to zero, so a replayed graph finds zeros too).
     */
    private final GrowOnlyWorkspace arrivals;

    /**
     * @param kv      the KV buffers, shared with {@code general}
     * @param general the general backend over the same buffers (prefill, extend, trees)
     */
    TrtllmMhaAttention(CudaContext context, List<AttentionLayer> layers, int pageSize, PagedKvBuffers kv,
                       AttentionBackend general) {
        this.context = context;
        this.activations = new ActivationKernels(context);
        this.kv = kv;
        this.general = general;
        this.pageSize = pageSize;
        if (!LIMITS.pageSize(pageSize)) {
            throw new IllegalArgumentException("trtllm_mha: page size " + pageSize + " is not one of "
                    + LIMITS.pageSizeList());
        }
        int tokens = Integer.MAX_VALUE;
        for (AttentionLayer l : layers) {
            int t = LIMITS.maxTokens(l.headDim(), l.groupSize());
            if (t <= 0) {
                throw new IllegalArgumentException("trtllm_mha: layer " + l.layer() + " has head dim " + l.headDim()
                        + " and group size " + l.groupSize() + " (compiled: head dims " + LIMITS.headDimList()
                        + ", up to " + LIMITS.maxQueryRows() + " query rows per KV head)");
            }
            tokens = Math.min(tokens, t);
        }
        this.maxTokens = layers.isEmpty() ? 1 : tokens;
        for (AttentionLayer l : layers) {
            launchShapes.putIfAbsent(List.of(l.groupSize(), l.headDim(), l.kvHeads(), l.slidingWindow()), l);
        }
        context.enter();
        this.metadata = new AttentionMetadata(context);
        this.partials = new GrowOnlyWorkspace(context);
        this.arrivals = new GrowOnlyWorkspace(context, true);
    }

    @Override
    public String name() {
        return AttentionDispatch.TRTLLM_MHA;
    }

    /** Query tokens per chunk served here (the least over the model's layers); longer chunks go to the general backend. */
    int maxTokens() {
        return maxTokens;
    }

    /** Splits the keys of every (chunk, KV head) over {@code n} blocks; 0: the heuristic (timings). */
    void forceSplits(int n) {
        forcedSplits = n;
    }

    /**
     * Runs the variants with {@code n} tiles of 16 keys per round (1, 2 or 4) where they are compiled
     * (head dims 256 and 512, up to 16 query rows); 0: {@link #roundTiles}'s choice (timings, tests).
     */
    void forceRounds(int n) {
        if (n != 0 && n != 1 && n != 2 && n != 4) {
            throw new IllegalArgumentException("tiles per round: 1, 2 or 4, not " + n);
        }
        forcedRounds = n;
    }

    /** Runs {@code v} at head dim 512 with 32 query rows; null: {@link #DEFAULT_ROWS32}. */
    void forceRows32(Rows32 v) {
        forcedRows32 = v;
    }

    PagedKvBuffers kv() {
        return kv;
    }

    AttentionMetadata metadata() {
        return metadata;
    }

    @Override
    public void beginStep(ForwardBatch batch, KvPages pages) {
        context.enter();
        if (pages.pageSize() != pageSize) {
            throw new IllegalArgumentException("pages of " + pages.pageSize() + " positions for a backend built for "
                    + pageSize);
        }
        int[] image = AttentionMetadata.image(batch, pages);
        AttentionMetadata.checkNewRowsHavePages(image, kv.writesFull(), kv.writesSliding());
        metadata.upload(batch, image);
        this.batch = batch;

        List<SequenceChunk> chunks = batch.chunks();
        served = new boolean[chunks.size()];
        servedChunks = 0;
        servedMaxTokens = 0;
        int firstOther = -1;
        int lastOther = -1;
        for (int i = 0; i < chunks.size(); i++) {
            SequenceChunk c = chunks.get(i);
            served[i] = c.tree() == null && c.tokens() <= maxTokens;
            if (served[i]) {
                servedChunks++;
                servedMaxTokens = Math.max(servedMaxTokens, c.tokens());
            } else {
                firstOther = firstOther < 0 ? i : firstOther;
                lastOther = i;
            }
        }
        delegated = null;
        if (firstOther < 0) {
            plan = Plan.NONE;
            return;
        }
        boolean oneRun = true;
        for (int i = firstOther; i <= lastOther; i++) {
            oneRun &= !served[i];
        }
        if (oneRun && servedChunks > 0) {
            plan = Plan.RUN;
            delegatedFirstRow = chunks.get(firstOther).firstRow();
            List<SequenceChunk> run = new ArrayList<>();
            for (int i = firstOther; i <= lastOther; i++) {
                SequenceChunk c = chunks.get(i);
                run.add(new SequenceChunk(c.sequenceId(), c.startPosition(), c.tokens(),
                        c.firstRow() - delegatedFirstRow, c.tree()));
            }
            SequenceChunk last = chunks.get(lastOther);
            delegated = new ForwardBatch(run, last.firstRow() + last.tokens() - delegatedFirstRow);
        } else {
            plan = Plan.ALL;
            delegated = batch;
        }
        general.beginStep(delegated, pages);
    }

    @Override
    public void attend(AttentionLayer layer, ForwardBatch batch, KvPages pages, Tensor q, Tensor k, Tensor v,
                       Tensor out) {
        context.enter();
        int tokens = batch.totalTokens();
        int hd = layer.headDim();
        CudaTensor cq = CudaTensor.of(q);
        CudaTensor co = CudaTensor.of(out);
        AttentionArguments.check(layer, tokens, cq, co);
        if (tokens == 0) {
            return;
        }
        if (batch != this.batch) {
            beginStep(batch, pages);            // callers that skip beginStep (tests, tools)
        }
        if (plan == Plan.ALL) {
            general.attend(layer, batch, pages, q, k, v, out);
            return;
        }
        if (layer.writesKv() && k != null) {                // null: the QKV norm stored them (kvWriteTarget)
            kv.write(layer, metadata, CudaTensor.of(k), CudaTensor.of(v));
        }
        activations.widened(cq);                             // q only as bf16 (CudaBackend.BF16_Q): its kernels read fp32
        launch(layer, batch, cq, co);
        if (plan == Plan.RUN) {
            // The run's K/V rows were stored above with the rest: the general backend only reads.
            AttentionLayer reader = new AttentionLayer(layer.layer(), layer.kvLayer(), false, layer.heads(),
                    layer.kvHeads(), hd, layer.slidingWindow(), layer.scale());
            int n = delegated.totalTokens();
            general.attend(reader, delegated, pages, rows(cq, delegatedFirstRow, n), null, null,
                    rows(co, delegatedFirstRow, n));
        }
    }

    /** The layer's own buffers through this step's metadata (all rows of the step): the QKV norm stores them. */
    @Override
    public io.jemma.attention.KvWriteTarget kvWriteTarget(AttentionLayer layer, ForwardBatch batch, KvPages pages) {
        context.enter();
        if (!layer.writesKv()) {
            return null;
        }
        if (batch != this.batch) {
            beginStep(batch, pages);            // callers that skip beginStep (tests, tools)
        }
        return kv.target(layer, metadata);
    }

    /** Moves KV entries (speculative trees): the general backend does it, over the same buffers. */
    @Override
    public void copyKv(KvPages pages, int sequenceId, int[] from, int[] to) {
        general.copyKv(pages, sequenceId, from, to);
    }

    private static CudaTensor rows(CudaTensor t, int from, int count) {
        return new CudaTensor(t.buffer(), t.offset() + (long) from * t.rowStride(), count, t.cols(), t.rowStride());
    }

    /** attention_xqa.cu over every chunk of the step (the ones not served here exit at once). */
    private void launch(AttentionLayer layer, ForwardBatch batch, CudaTensor q, CudaTensor out) {
        int hd = layer.headDim();
        int group = layer.groupSize();
        int nq = queryTiles(group * servedMaxTokens);
        int rowsPad = 8 * nq;
        int chunks = batch.chunks().size();
        Rows32 v = rows32(layer, roundTiles(layer));
        int tpr = Math.max(roundTiles(layer), v.tpr);
        int splits = splits(layer, batch, roundTiles(layer));
        DeviceBuffer partO = null;
        DeviceBuffer partMl = null;
        DeviceBuffer counters = null;
        if (splits > 1) {
            long partRows = (long) chunks * layer.kvHeads() * splits * rowsPad;
            long oBytes = partRows * hd * Float.BYTES;
            long mlBytes = partRows * 2 * Float.BYTES;
            DeviceBuffer ws = partials.atLeast(oBytes + mlBytes);
            partO = ws;
            partMl = ws.slice(oBytes, mlBytes);
            counters = arrivals.atLeast((long) chunks * layer.kvHeads() * COUNTERS_PER_PAIR * Integer.BYTES);
        }
        PagedKvBuffers.KeySource derived = kv.keySource(layer);
        // K stored once: the _kd twin, which derives the keys from the values (the plain kernel carries none of it).
        String kernel = "jemma_xqa_hd" + hd + "_p" + pageSize + "_q" + nq + (tpr > 1 && v.tpr == 1 ? "_r" + tpr : "")
                + v.suffix + (derived == null ? "" : "_kd");
        context.launch(kernel, splits, layer.kvHeads(), chunks, 32 * warps(hd, nq, tpr, v.pipe),
                sharedBytes(hd, nq, tpr, v.pipe, v.ring),
                new KernelArgs()
                .ptr(q.address()).i64(q.rowStride())
                .ptr(out.address()).i64(out.rowStride())
                .ptr(kv.keysAddress(layer)).ptr(kv.values(layer).address())
                .i32(layer.kvHeads()).i32(group).f32(layer.scale() * LOG2E).i32(layer.slidingWindow())
                .ptr(metadata.address()).i32(layer.slidingWindow() > 0 ? 1 : 0).i32(maxTokens)
                .ptr(partO == null ? 0 : partO.address()).ptr(partMl == null ? 0 : partMl.address())
                .ptr(counters == null ? 0 : counters.address())
                // K stored once (k_eq_v layers): the kernel derives the keys from the values
                .ptr(derived == null ? 0 : derived.weight())
                .ptr(derived == null ? 0 : derived.inverseFrequencies())
                .i32(derived == null ? 0 : derived.derivedChunks()));
    }

    /** Tiles of 16 keys the layer's longest served chunk reads. */
    private int maxTiles(AttentionLayer layer, ForwardBatch batch) {
        int maxTiles = 0;
        for (int i = 0; i < batch.chunks().size(); i++) {
            if (served[i]) {
                SequenceChunk c = batch.chunks().get(i);
                int lo = layer.firstVisible(c.startPosition());
                maxTiles = Math.max(maxTiles, (c.endPosition() + TILE_KEYS - 1) / TILE_KEYS - lo / TILE_KEYS);
            }
        }
        return maxTiles;
    }

    /**
     * Tiles of 16 keys per round (the kernel variant) for this layer's launch: the forced count where
     * that variant is compiled, else 2 at head dim 256 with up to 8 query rows, else 1.
     */
    private int roundTiles(AttentionLayer layer) {
        int nq = layerQueryTiles(layer);
        // Wide rounds at head dim 512 take up to 213 KB of shared memory: Hopper's 227 KB per block.
        if (!wideCompiled(layer.headDim(), nq) || context.info().major() < 9) {
            return 1;
        }
        if (forcedRounds > 0) {
            return forcedRounds;
        }
        // Head dim 256, up to 8 query rows: two tiles per round. On the H200 (two runs, NOTES.md) batch 32
        // decode at 32k 94-95% of copy against 88-90% with one tile, 8k 95-96 against 94-95, 2k equal;
        // batch 1 and 8 within noise. Head dim 512 and 16 rows: no gain, or slower (one block per SM).
        return layer.headDim() == 256 && nq == 1 ? 2 : 1;
    }

    /**
     * The variant for this layer's launch: where rows32Compiled (head dim 512, 32 query rows, one tile per
     * round), on Hopper, the forced or default one; else PLAIN (the variant of the head dim and rows).
     */
    private Rows32 rows32(AttentionLayer layer, int tpr) {
        if (!rows32Compiled(layer.headDim(), layerQueryTiles(layer)) || tpr != 1 || context.info().major() < 9) {
            return Rows32.PLAIN;
        }
        return forcedRows32 != null ? forcedRows32 : DEFAULT_ROWS32;
    }

    /** Blocks per (chunk, KV head) for this layer's served chunks: enough to fill the GPU in whole waves. */
    private int splits(AttentionLayer layer, ForwardBatch batch, int tpr) {
        if (forcedSplits > 0) {
            return forcedSplits;
        }
        int nq = layerQueryTiles(layer);
        int blocksPerWave = context.info().multiprocessors()
                * blocksPerSm(layer.headDim(), nq, tpr, rows32(layer, tpr));
        int plain = splits(servedChunks * layer.kvHeads(), maxTiles(layer, batch), blocksPerWave, tpr);
        return withMerge(plain, layer.groupSize() * servedMaxTokens, layer.headDim());
    }

    /**
     * The split count {@code splits} with the merge's cost counted: beyond {@link #MERGE_GROUP} splits the
     * kernel merges in two levels (an extra arrival round, about 1.5-2 us), which pays only when one block's
     * single merge would read many bytes (splits x rows x head dim x 4). On the H200 at batch 1, 2k: head
     * dim 512 (8 rows, 32 splits, 512 KB) two levels 15.8 us against 17.2 in one; head dim 256 window 1024
     * (2 rows, 15-16 splits, 32 KB) two levels 13.2-13.4 us against 11.0 at 8 splits in one level. So at
     * most {@link #MERGE_GROUP} splits while that single merge stays at or under 64 KB.
     */
    static int withMerge(int splits, int rows, int headDim) {
        long singleMergeBytes = (long) splits * rows * headDim * Float.BYTES;
        return splits > MERGE_GROUP && singleMergeBytes <= 64 * 1024 ? MERGE_GROUP : splits;
    }

    /** 8-row query tiles of this layer's launch. */
    private int layerQueryTiles(AttentionLayer layer) {
        return queryTiles(layer.groupSize() * servedMaxTokens);
    }

    /** The step's plan, what it serves and, per launch shape, its split count; and the general backend's key. */
    @Override
    public long graphKey() {
        long key = 31L * plan.ordinal() + servedChunks;
        key = 31 * key + servedMaxTokens;
        if (plan != Plan.ALL && servedChunks > 0) {
            for (AttentionLayer l : launchShapes.values()) {
                int tpr = roundTiles(l);
                key = 31 * (31 * (31 * key + tpr) + rows32(l, tpr).ordinal()) + splits(l, batch, tpr);
            }
        }
        return plan == Plan.NONE ? key : 31 * key + general.graphKey();
    }

    /** 8-row query tiles for {@code rows} query rows per KV head: the compiled variants 1, 2 and 4. */
    static int queryTiles(int rows) {
        int tiles = (rows + 7) / 8;
        if (tiles > 4) {
            throw new IllegalArgumentException(rows + " query rows per KV head exceed trtllm_mha's "
                    + LIMITS.maxQueryRows());
        }
        return tiles <= 2 ? Math.max(1, tiles) : 4;
    }

    /** Warps per block of a variant (Shape<HD, NQ>::WARPS in attention_xqa.cu): one per 16 dims, at most 8. */
    static int warps(int headDim, int nq) {
        return warps(headDim, nq, 1, 0);
    }

    /** Warps per block of a variant, {@code pipe} > 0: the pipelined one with that many warps. */
    static int warps(int headDim, int nq, int tpr, int pipe) {
        return pipe > 0 ? pipe : headDim == 512 && nq > 2 && tpr == 1 ? 16 : Math.min(8, headDim / 16);
    }

    /** Whether attention_xqa.cu compiles the {@link Rows32} variants for this head dim and query-tile count. */
    static boolean rows32Compiled(int headDim, int nq) {
        return headDim == 512 && nq == 4;
    }

    /** Whether attention_xqa.cu compiles wide rounds (2 and 4 tiles) for this head dim and query-tile count. */
    static boolean wideCompiled(int headDim, int nq) {
        return (headDim == 256 || headDim == 512) && nq <= 2;
    }

    /** Shape<HD, NQ, TPR>::STAGES of attention_xqa.cu: tiles of 16 keys in flight. */
    static int stages(int headDim, int nq, int tpr) {
        return stages(headDim, nq, tpr, 0);
    }

    /** Shape<HD, NQ, TPR, PIPE>::STAGES. */
    static int stages(int headDim, int nq, int tpr, int pipe) {
        if (pipe > 0) {
            return pipe == 8 ? 6 : 5;
        }
        if (tpr == 1) {
            return headDim == 512 && nq <= 2 ? 3 : headDim <= 128 ? 4 : 5;
        }
        return headDim == 512 ? (tpr == 2 ? (nq > 2 ? 5 : 3) : nq == 1 ? 6 : 5) : 5;
    }

    /** Shape<HD, NQ, TPR>::SMEM of attention_xqa.cu: K/V stages (padded rows), partial scores, P, softmax state. */
    static int sharedBytes(int headDim, int nq, int tpr) {
        return sharedBytes(headDim, nq, tpr, 0, false);
    }

    /** Shape<HD, NQ, TPR, PIPE, RING>::SMEM. */
    static int sharedBytes(int headDim, int nq, int tpr, int pipe, boolean ring) {
        int rowBytes = headDim * 2 + 16;
        int rows = 8 * nq;
        int keys = TILE_KEYS * tpr;
        return stages(headDim, nq, tpr, pipe) * 2 * TILE_KEYS * rowBytes + warps(headDim, nq, tpr, pipe) * rows * (keys + 4) * 4
                + rows * (keys + 8) * 2 + 3 * rows * 4 + (ring ? TABLE_RING * Integer.BYTES : 0);
    }

    /** Shape<HD, NQ, TPR>::MIN_BLOCKS: two blocks per SM where two fit its 228 KB (1 KB reserved per block). */
    static int blocksPerSm(int headDim, int nq, int tpr) {
        return blocksPerSm(headDim, nq, tpr, Rows32.PLAIN);
    }

    /** Shape<HD, NQ, TPR, PIPE, RING>::MIN_BLOCKS of the variant {@code v}. */
    static int blocksPerSm(int headDim, int nq, int tpr, Rows32 v) {
        int t = Math.max(tpr, v.tpr);
        return 2 * (sharedBytes(headDim, nq, t, v.pipe, v.ring) + 1024) <= 228 * 1024 ? 2 : 1;
    }

    /**
     * {@link #splits(int, int, int)} for a variant of {@code tpr} tiles per round: where a few more splits
     * in the same number of waves make every split's tiles whole rounds, those (64 tiles over 16 KV heads:
     * 16 splits of 4 tiles rather than 15 of 5).
     */
    static int splits(int pairs, int maxTiles, int blocksPerWave, int tpr) {
        int plain = splits(pairs, maxTiles, blocksPerWave);
        if (tpr == 1 || pairs <= 0) {
            return plain;
        }
        long waves = Grid.ceilDiv((long) pairs * plain, blocksPerWave);
        for (int s = plain; s <= MAX_SPLITS && Grid.ceilDiv((long) pairs * s, blocksPerWave) == waves; s++) {
            if (Grid.ceilDiv(maxTiles, s) % tpr == 0) {
                return s;
            }
        }
        return plain;
    }

    /**
     * How many blocks share one (chunk, KV head)'s keys: the fewest that fill the waves of resident
     * blocks to 90% (blocks / (waves x blocks per wave)), each with at least {@link #MIN_TILES_PER_SPLIT}
     * tiles; else the best filling. On the H200 at batch 32, head dim 512 (128 pairs, 264 blocks per
     * wave): 2 splits ran at 92% of copy bandwidth, 3 (1.45 waves) at 78%, 4 at 91%.
     */
    static int splits(int pairs, int maxTiles, int blocksPerWave) {
        if (pairs <= 0) {
            return 1;
        }
        int cap = Math.max(1, Math.min(MAX_SPLITS, maxTiles / MIN_TILES_PER_SPLIT));
        int best = 1;
        double bestFill = -1;
        for (int s = 1; s <= cap; s++) {
            double waves = (double) pairs * s / blocksPerWave;
            double fill = waves / Math.ceil(waves);
            if (fill >= 0.9) {
                return s;
            }
            if (fill > bestFill + 1e-9) {
                best = s;
                bestFill = fill;
            }
        }
        return best;
    }
}
