package io.jemma.backend.cuda;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.attention.SequenceChunk;
import io.jemma.backend.Tensor;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The general GPU attention backend ("triton", after the reference server's backend of that name):
 * attention_general.cu over the paged bf16 KV cache ({@link PagedKvBuffers}), reading K/V through the
 * step's block tables ({@link AttentionMetadata}): any page size (1 included), head dims up to 512
 * (multiples of 8; kernels for 64, 256 and 512, smaller dims zero-padded), GQA of any group size,
 * sliding windows, chunked prefill on top of cached KV, speculative verify of any number of tokens,
 * causal or tree-masked.
 *
 * <p>Per step ({@link #beginStep}) the metadata and this backend's work lists are uploaded once: for each
 * layer kind (GQA group, head-dim kernel) the chunks of at most {@link #DECODE_MAX_TOKENS} tokens become
 * decode items (all rows of a request, tokens x group, in one block when they are at most 64) and longer
 * chunks become extend tiles of 64 or 128 rows, heaviest first. Per layer: the K/V store of the new rows
 * (unless the layer reads a shared cache), then the decode kernel with split-KV (flash decoding: the
 * splits from the longest decode range and the SM count, merged by jemma_attn_merge), then the extend
 * (flash attention) kernel: on compute capability 9.0 the sm_90a one (attention_prefill_sm90.cu, wgmma)
 * at head dims 256 and 512, the mma.sync one otherwise.
 */
final class TritonAttention implements AttentionBackend {
    /** Chunks up to this many tokens take the decode / verify kernels. */
    static final int DECODE_MAX_TOKENS = 8;
    static final int MAX_HEAD_DIM = 512;
    private static final float LOG2E = 1.4426950408889634f;
    private static final int MAX_SPLITS = 128;
    /** A split covers at least this many key tiles (128 keys): below it the merge costs more than it saves. */
    private static final int MIN_TILES_PER_SPLIT = 4;

    /**
     * One compiled kernel of attention_general.cu: its head-dim bucket, 16-row groups, column splits,
     * keys per tile and pipeline stages (the JEMMA_ATTN_KERNEL lines there).
     */
    record Variant(String kernel, int headDimBucket, int rowGroups, int columnSplits, int keysPerTile, int stages) {
        int rows() {
            return 16 * rowGroups;
        }

        int threads() {
            return 32 * rowGroups * columnSplits;
        }

        /** attention_general.cu's Config::SMEM. */
        int sharedBytes() {
            int dw = headDimBucket / columnSplits;
            int ntS = keysPerTile / 8;
            int ntO = dw / 8;
            boolean qInRegisters = (dw / 16) * 4 + ntO * 4 + ntS * 4 <= 160;
            int q = rows() * headDimBucket * 2;
            int tiles = 2 * stages * keysPerTile * headDimBucket * 2;
            int partial = columnSplits > 1 ? rowGroups * columnSplits * ntS * 32 * 16 : 0;
            boolean partialInQ = qInRegisters && partial <= q;
            int slots = stages * keysPerTile * 4;
            return q + tiles + (partialInQ ? 0 : partial) + slots;
        }
    }

    static int headDimBucket(int headDim) {
        if (headDim <= 0 || headDim > MAX_HEAD_DIM || headDim % 8 != 0) {
            throw new IllegalArgumentException("head dim " + headDim + ": the GPU attention supports multiples of 8 up to "
                    + MAX_HEAD_DIM);
        }
        return headDim <= 64 ? 64 : headDim <= 256 ? 256 : 512;
    }

    /** attention_general.cu's JEMMA_ATTN_VARIANTS, in its order. */
    static final List<Variant> VARIANTS = List.of(
            new Variant("jemma_attn_extend_hd64", 64, 4, 1, 64, 2),
            new Variant("jemma_attn_extend_hd256", 256, 8, 1, 64, 2),
            new Variant("jemma_attn_extend_hd512", 512, 4, 2, 32, 2),
            new Variant("jemma_attn_decode_hd64_r16", 64, 1, 2, 32, 3),
            new Variant("jemma_attn_decode_hd64_r32", 64, 2, 2, 32, 3),
            new Variant("jemma_attn_decode_hd64_r64", 64, 4, 1, 32, 3),
            new Variant("jemma_attn_decode_hd256_r16", 256, 1, 4, 32, 3),
            new Variant("jemma_attn_decode_hd256_r32", 256, 2, 2, 32, 2),
            new Variant("jemma_attn_decode_hd256_r64", 256, 4, 2, 32, 3),
            new Variant("jemma_attn_decode_hd512_r16", 512, 1, 4, 32, 3),
            new Variant("jemma_attn_decode_hd512_r32", 512, 2, 2, 32, 2),
            new Variant("jemma_attn_decode_hd512_r64", 512, 4, 2, 32, 2),
            // alternatives for the timing test (useVariants)
            new Variant("jemma_attn_decode_hd256_r16_n16", 256, 1, 4, 16, 4),
            new Variant("jemma_attn_decode_hd512_r16_n16", 512, 1, 4, 16, 3),
            new Variant("jemma_attn_extend_hd256_n32", 256, 8, 1, 32, 3),
            new Variant("jemma_attn_extend_hd512_r32", 512, 2, 4, 32, 2),
            new Variant("jemma_attn_decode_hd512_r32_n16", 512, 2, 2, 16, 2),
            new Variant("jemma_attn_decode_hd512_r32_w8", 512, 2, 4, 32, 3));

    /** The kernels the table does not pick, kept for tests and timing comparisons (useVariants). */
    static final List<String> ALTERNATIVES = List.of("jemma_attn_decode_hd256_r16_n16",
            "jemma_attn_decode_hd512_r16", "jemma_attn_decode_hd512_r32_n16", "jemma_attn_decode_hd512_r32",
            "jemma_attn_extend_hd256_n32", "jemma_attn_extend_hd512_r32");

    /**
     * attention_prefill_sm90.cu: the Hopper (sm_90a) extend kernel for head dim 256, wgmma with a producer
     * warpgroup, taking the same 128-row work items as jemma_attn_extend_hd256 in its place on compute
     * capability 9.0.
     */
    static final String SM90_EXTEND_HD256 = "jemma_attn_extend_sm90_hd256";
    /**
     * The same for head dim 512, 64-row items like jemma_attn_extend_hd512 (the "_plain" alternative now; the
     * default is its "_split_ahead_n48_tma" variant: a cluster of 2 CTAs per 128-row item of the plan's wide list, K
     * and V by bulk tensor copy, S a tile ahead of the softmax, 48-key tiles).
     */
    static final String SM90_EXTEND_HD512 = "jemma_attn_extend_sm90_hd512";
    /**
     * The head dim 512 kernel for K stored once: the default's twin that derives each key block from the V cache
     * (attention_prefill_sm90.cu's KD), for k_eq_v layers whose RoPE rotates only the first 64 pairs.
     */
    static final String SM90_EXTEND_HD512_KEYS_FROM_VALUES = SM90_EXTEND_HD512 + "_split_n48_tma_kd";
    /** The suffix of the sm_90a kernels that derive K from V: never an alternative for a layer that stores K. */
    static final String KEYS_FROM_VALUES_SUFFIX = "_kd";
    /** The pairs a KD kernel's derived block holds: 64 columns of each half of the head. */
    static final int SM90_DERIVED_PAIRS = 64;
    static final int SM90_THREADS = 384;

    /**
     * One sm_90a extend kernel: its head dim, query rows per block, keys per tile, K/V stages, whether it is
     * persistent (one block per SM over all items), its thread-block cluster size along the grid's x (1, or 2:
     * the CTAs of a cluster take adjacent work items and share their K/V tiles, so the grid's x is rounded up),
     * and whether the cluster's 2 CTAs split the head dim of one item instead (a cluster per item of 128 rows);
     * exchangeBuffers: the partial-score exchange's buffers per warp (2, by tile parity; 1: XONE, session 6);
     * keysFromValues: the kernel derives K from the V cache (K stored once, attention_prefill_sm90.cu's KD).
     */
    record Sm90Kernel(String name, int headDim, int rows, int keys, int stages, boolean persistent, int cluster,
                      boolean split, int exchangeBuffers, boolean keysFromValues) {
        Sm90Kernel(String name, int headDim, int rows, int keys, int stages, boolean persistent, int cluster,
                   boolean split, int exchangeBuffers) {
            this(name, headDim, rows, keys, stages, persistent, cluster, split, exchangeBuffers, false);
        }

        Sm90Kernel(String name, int headDim, int rows, int keys, int stages, boolean persistent, int cluster,
                   boolean split) {
            this(name, headDim, rows, keys, stages, persistent, cluster, split, 2);
        }

        Sm90Kernel(String name, int headDim, int rows, int keys) {
            this(name, headDim, rows, keys, 2, false, 1, false);
        }

        Sm90Kernel(String name, int headDim, int rows, int keys, int stages, boolean persistent) {
            this(name, headDim, rows, keys, stages, persistent, 1, false);
        }

        /**
         * Whether the kernel fetches K and V by bulk tensor copy (attention_prefill_sm90.cu's TMA): boxes of
         * {@link #TMA_BOX_ROWS} slots, so pages of a multiple of that, and the head dim exactly its own.
         */
        boolean tma() {
            return name.contains(TMA_SUFFIX);
        }

        /**
         * attention_prefill_sm90.cu's Cfg SMEM: alignment slack, Q, the K and V stages (keysFromValues: a K stage is
         * the derived 64-column block, and the other half's 64-column block rides with each V stage), the
         * partial-score exchange (head dim 512: two warpgroups split the head dim), mbarriers.
         */
        int sharedBytes() {
            int held = split ? headDim / 2 : headDim;       // head-dim columns a CTA holds
            int q = rows * held * 2;
            int tile = keys * held * 2;
            int keyTile = keysFromValues ? keys * 64 * 2 : tile;
            int peer = keysFromValues ? keys * 64 * 2 : 0;
            int exchange = headDim == 512 ? exchangeBuffers * 2 * 64 * keys * 4 : 0;
            return 1024 + q + stages * (keyTile + tile + peer) + exchange + 8 * 4 * stages + (split ? 8 * 16 : 0);
        }
    }

    /** attention_prefill_sm90.cu's JEMMA_FA3_KERNELS, in its order. */
    static final List<Sm90Kernel> SM90_KERNELS = List.of(
            new Sm90Kernel(SM90_EXTEND_HD256, 256, 128, 64),
            new Sm90Kernel(SM90_EXTEND_HD512, 512, 64, 32),
            new Sm90Kernel(SM90_EXTEND_HD256 + "_base", 256, 128, 64),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_base", 512, 64, 32),
            new Sm90Kernel(SM90_EXTEND_HD256 + "_serial", 256, 128, 64),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_serial", 512, 64, 32),
            new Sm90Kernel(SM90_EXTEND_HD256 + "_pingpong", 256, 128, 64),
            new Sm90Kernel(SM90_EXTEND_HD256 + "_early", 256, 128, 64),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_early", 512, 64, 32),
            new Sm90Kernel(SM90_EXTEND_HD256 + "_n80", 256, 128, 80),
            new Sm90Kernel(SM90_EXTEND_HD256 + "_async", 256, 128, 64),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_async", 512, 64, 32),
            new Sm90Kernel(SM90_EXTEND_HD256 + "_persist", 256, 128, 64, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_persist", 512, 64, 32, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_cluster", 512, 64, 32, 2, false, 2, false),
            new Sm90Kernel(SM90_EXTEND_HD256 + "_cluster", 256, 128, 64, 2, false, 2, false),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_cluster_solo", 512, 64, 32, 2, false, 2, false),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split", 512, 128, 32, 4, false, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split2", 512, 128, 32, 2, false, 2, true),
            // Session 6 (fs6): 48 / 64-key tiles (64: one exchange buffer), S issued a tile ahead (_ahead).
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_n48", 512, 128, 48, 2, false, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_n64", 512, 128, 64, 2, false, 2, true, 1),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_ahead", 512, 128, 32, 4, false, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_ahead_n48", 512, 128, 48, 2, false, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_ahead_n64", 512, 128, 64, 2, false, 2, true, 1),
            // The defaults reading bf16 Q (BF16_Q_SUFFIX): taken in place of their fp32 kernel when q holds its values
            // only in its bf16 copy (CudaBackend.BF16_Q), never as an alternative.
            new Sm90Kernel(SM90_EXTEND_HD256 + "_bq", 256, 128, 64),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_bq", 512, 128, 32, 4, false, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_n48_bq", 512, 128, 48, 2, false, 2, true),
            // Session 7: K and V by bulk tensor copy (TMA), pages of a multiple of 16 slots.
            new Sm90Kernel(SM90_EXTEND_HD256 + "_tma", 256, 128, 64),
            new Sm90Kernel(SM90_EXTEND_HD256 + "_tma_bq", 256, 128, 64),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_n48_tma", 512, 128, 48, 2, false, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_n48_tma_bq", 512, 128, 48, 2, false, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD256 + "_tma_n80", 256, 128, 80),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_ahead_tma", 512, 128, 32, 4, false, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD256 + "_tma_n80_bq", 256, 128, 80),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_ahead_tma_bq", 512, 128, 32, 4, false, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_ahead_n48_tma", 512, 128, 48, 2, false, 2, true),
            new Sm90Kernel(SM90_EXTEND_HD512 + "_split_ahead_n48_tma_bq", 512, 128, 48, 2, false, 2, true),
            // Session 9: K stored once (the k_eq_v layers' keys derived from the V cache), taken for those layers only.
            new Sm90Kernel(SM90_EXTEND_HD512_KEYS_FROM_VALUES, 512, 128, 48, 3, false, 2, true, 2, true));

    /** The infix of the sm_90a kernels that fetch K and V by bulk tensor copy (attention_prefill_sm90.cu's TMA). */
    static final String TMA_SUFFIX = "_tma";
    /** The slots (keys) of one bulk-copy box: a page must hold whole boxes. */
    static final int TMA_BOX_ROWS = 16;
    /** The columns of one box: the 256 a CTA holds (head dim 256, or one half of 512), four 128-byte swizzle rows. */
    static final int TMA_BOX_COLS = 256;
    /** The tensor-map parameters of a kernel that reads none (every sm_90a kernel has the two parameters). */
    private static final long[] NO_TENSOR_MAP = new long[TensorMaps.WORDS];

    /** The suffix of the sm_90a kernels that read bf16 Q (attention_prefill_sm90.cu's BQ). */
    static final String BF16_Q_SUFFIX = "_bq";

    /**
     * The suffix that names each head dim's kernel without a suffix (session 4's default, one CTA per item), where
     * the default is another one (NOTES.md versions 3, 4b and 5).
     */
    static final String SM90_PLAIN = "_plain";

    /**
     * The default alternative per head dim (the system properties below override it; "" the plain kernel). Session 7,
     * 8k causal on the H200 (NOTES.md version 5): head dim 256 _tma_n80 442 TFLOP/s against the gather's 398; head dim
     * 512 _split_ahead_n48_tma 364 against _split_n48's 310.
     */
    private static final String SM90_DEFAULT_HD256 = "_tma_n80";
    private static final String SM90_DEFAULT_HD512 = "_split_ahead_n48_tma";
    /**
     * What the defaults become where the bulk tensor copy cannot run (pages that are not a multiple of
     * {@link #TMA_BOX_ROWS} slots): the best gather kernels (session 6's defaults), not the TMA defaults' own gather
     * twins (_split_ahead_n48 spills: 253 against _split_n48's 312 TFLOP/s).
     */
    private static final String GATHER_DEFAULT_HD256 = "";
    private static final String GATHER_DEFAULT_HD512 = "_split_n48";

    /** The sm_90a alternatives' suffixes (tests and timings): every kernel name past its head dim's. */
    static final List<String> SM90_SUFFIXES = java.util.stream.Stream.concat(java.util.stream.Stream.of(SM90_PLAIN),
            SM90_KERNELS.stream()
                    .map(k -> k.name().substring((k.headDim() == 256 ? SM90_EXTEND_HD256 : SM90_EXTEND_HD512).length()))
                    .filter(x -> !x.isEmpty() && !x.endsWith(BF16_Q_SUFFIX) && !x.endsWith(KEYS_FROM_VALUES_SUFFIX)))
            .distinct().toList();

    private static Sm90Kernel sm90Kernel(String name) {
        for (Sm90Kernel k : SM90_KERNELS) {
            if (k.name().equals(name)) {
                return k;
            }
        }
        return null;
    }

    private static Variant variant(String kernel) {
        for (Variant v : VARIANTS) {
            if (v.kernel().equals(kernel)) {
                return v;
            }
        }
        throw new IllegalArgumentException("no attention kernel " + kernel);
    }

    static Variant extendVariant(int bucket) {
        return variant("jemma_attn_extend_hd" + bucket);
    }

    /** The decode kernel whose block holds {@code rows} (tokens x group) rows, or 64 when more. */
    static Variant decodeVariant(int bucket, int rows) {
        int r = rows <= 16 ? 16 : rows <= 32 ? 32 : 64;
        return variant(switch (bucket * 100 + r) {
            // H200, batch 32, 8k / 32k context: 94% / 101% of copy bandwidth, against 91% / 93% with 32-key
            // tiles (two blocks per SM instead of one)
            case 51216 -> "jemma_attn_decode_hd512_r16_n16";
            // verify of 4 tokens: 89% / 93%, against 74% / 78% with 4 warps
            case 51232 -> "jemma_attn_decode_hd512_r32_w8";
            default -> "jemma_attn_decode_hd" + bucket + "_r" + r;
        });
    }

    /** Checks {@link Variant#sharedBytes()} against the kernels' own figures (jemma_attn_shared_bytes). */
    private static void checkSharedBytes(CudaContext context) {
        DeviceBuffer out = context.memory().allocate(4L * VARIANTS.size());
        context.launch("jemma_attn_shared_bytes", 1, 1, 32, new KernelArgs().ptr(out.address()));
        int[] bytes = new int[VARIANTS.size()];
        context.transfers().download(out, 0, java.lang.foreign.MemorySegment.ofArray(bytes));
        for (int i = 0; i < bytes.length; i++) {
            if (bytes[i] != VARIANTS.get(i).sharedBytes()) {
                throw new IllegalStateException(VARIANTS.get(i) + " uses " + bytes[i] + " bytes of shared memory, "
                        + "not the " + VARIANTS.get(i).sharedBytes() + " TritonAttention computes: the kernel table "
                        + "and attention_general.cu disagree");
            }
        }
        if (context.info().sm90a()) {
            DeviceBuffer sm90 = context.memory().allocate(4L * SM90_KERNELS.size());
            context.launch("jemma_attn_sm90_shared_bytes", 1, 1, 32, new KernelArgs().ptr(sm90.address()));
            int[] sm90Bytes = new int[SM90_KERNELS.size()];
            context.transfers().download(sm90, 0, java.lang.foreign.MemorySegment.ofArray(sm90Bytes));
            for (int i = 0; i < sm90Bytes.length; i++) {
                if (sm90Bytes[i] != SM90_KERNELS.get(i).sharedBytes()) {
                    throw new IllegalStateException(SM90_KERNELS.get(i) + " uses " + sm90Bytes[i] + " bytes of shared "
                            + "memory, not the " + SM90_KERNELS.get(i).sharedBytes() + " TritonAttention computes");
                }
            }
        }
    }

    /** Layers that share a work list: same GQA group and head-dim kernel. */
    record Kind(int group, int bucket) {
    }

    /**
     * One kind's lists in this step's plan: (chunk, first flattened row) pairs at int offsets; where the extend
     * items have fewer than 128 rows, also the same chunks in 128-row items (wide: the sm_90a kernels whose
     * cluster splits the head dim of one 128-row item).
     */
    record KindPlan(Variant decode, int decodeOffset, int decodeItems, Variant extend, int extendOffset,
                    int extendItems, int wideOffset, int wideItems) {
    }

    private final CudaContext context;
    private final PagedKvBuffers kv;
    private final AttentionMetadata metadata;
    /** Widens a bf16-only q (CudaBackend.BF16_Q) for the kernels that read fp32 q. */
    private final ActivationKernels activations;
    /** A second stable buffer: this backend's work lists for the step. */
    private final AttentionMetadata plans;
    private final Map<Kind, Integer> kindIndex = new LinkedHashMap<>();
    private final Map<String, Integer> occupancy = new java.util.HashMap<>();
    private KindPlan[] stepPlans = new KindPlan[0];
    private int[] planImage = new int[0];
    private final GrowOnlyWorkspace workspace;
    /** Kernels forced in place of the table's choice (timing comparisons), or null. */
    private Variant forcedDecode;
    private Variant forcedExtend;
    /** Whether extend chunks at head dims 256 and 512 take the sm_90a kernels (Hopper; off: the mma.sync ones). */
    private boolean sm90Extend;
    /**
     * The sm_90a kernels' alternative (comparisons): "" (the default) or one of {@link #SM90_SUFFIXES}
     * (attention_prefill_sm90.cu's JEMMA_FA3_KERNELS says what each changes).
     */
    private String sm90Suffix = "";
    /**
     * The kernel each head dim takes when {@link #sm90Suffix} is "": its default, or the alternative that the
     * system properties jemma.cuda.sm90-hd256 / jemma.cuda.sm90-hd512 name (a suffix: benchmarking an
     * alternative through the whole model).
     */
    private final String sm90Hd256 = sm90Property("jemma.cuda.sm90-hd256", 256);
    private final String sm90Hd512 = sm90Property("jemma.cuda.sm90-hd512", 512);
    /**
     * Whether K-stored-once layers take the sm_90a KD kernel where it fits (system property jemma.cuda.sm90-kd,
     * default true; false: the mma.sync kernel, which derives keys too: comparisons).
     */
    private final boolean sm90KeysFromValues = !"false".equals(System.getProperty("jemma.cuda.sm90-kd"));
    /** Launches of the sm_90a kernel that derives K (tests: that the K-once scenarios reach it). */
    private long keysFromValuesLaunches;
    /** The KV pages' slots (a TMA kernel needs a multiple of {@link #TMA_BOX_ROWS}). */
    private final int pageSize;
    /** Per KV buffer (device address), its tensor map for the TMA kernels, encoded on first use. */
    private final Map<MapKey, long[]> tensorMaps = new java.util.HashMap<>();

    /** A tensor map's buffer and box width: the KD kernel reads the V buffer through two. */
    private record MapKey(long address, int boxCols) {
    }
    /** One layer per distinct launch shape (group, head dim, kv heads, window): what graphKey looks at. */
    private final Map<List<Integer>, AttentionLayer> launchShapes = new LinkedHashMap<>();

    TritonAttention(CudaContext context, List<AttentionLayer> layers, KvGeometry geometry) {
        this(context, layers, geometry, Map.of());
    }

    /**
     * @param keysFromValues the k_eq_v layers that store K once (by layer number): their buffers hold V only and
     *                       the kernels derive K from it (their extend chunks take the mma.sync kernel, which does)
     */
    TritonAttention(CudaContext context, List<AttentionLayer> layers, KvGeometry geometry,
                    Map<Integer, PagedKvBuffers.KeySource> keysFromValues) {
        this.context = context;
        for (AttentionLayer l : layers) {
            kindIndex.putIfAbsent(new Kind(l.groupSize(), headDimBucket(l.headDim())), kindIndex.size());
            launchShapes.putIfAbsent(List.of(l.groupSize(), l.headDim(), l.kvHeads(), l.slidingWindow()), l);
        }
        context.enter();
        checkSharedBytes(context);
        this.sm90Extend = context.info().sm90a();
        this.kv = new PagedKvBuffers(context, layers, geometry, keysFromValues);
        this.pageSize = geometry.pageSize();
        this.metadata = new AttentionMetadata(context);
        this.activations = new ActivationKernels(context);
        this.plans = new AttentionMetadata(context);
        this.workspace = new GrowOnlyWorkspace(context);
    }

    @Override
    public String name() {
        return "triton";
    }

    /** Moves KV entries (speculative trees) in every layer that writes KV, each in its own pool. */
    @Override
    public void copyKv(KvPages pages, int sequenceId, int[] from, int[] to) {
        context.enter();
        kv.copy(pages, sequenceId, from, to);
    }

    /** The layer's own buffers through this step's metadata: the fused QKV norm stores the new rows. */
    @Override
    public io.jemma.attention.KvWriteTarget kvWriteTarget(AttentionLayer layer, ForwardBatch batch, KvPages pages) {
        context.enter();
        if (!layer.writesKv()) {
            return null;
        }
        if (metadata.batch() != batch) {
            beginStep(batch, pages);          // a caller that skipped beginStep (tests): once per batch
        }
        return kv.target(layer, metadata);
    }

    /** How many times the sm_90a kernel that derives K from V ran (tests). */
    long keysFromValuesLaunches() {
        return keysFromValuesLaunches;
    }

    /** The KV buffers (tests; the other GPU backend shares the layout). */
    PagedKvBuffers buffers() {
        return kv;
    }

    /** The step metadata of the last {@link #beginStep}. */
    AttentionMetadata metadata() {
        return metadata;
    }

    /**
     * Runs the given kernels instead of the ones the table picks (null: the table's), for timing
     * comparisons; the decode kernel must hold the step's rows and the extend kernel its head dim.
     */
    void useVariants(String decodeKernel, String extendKernel) {
        forcedDecode = decodeKernel == null ? null : variant(decodeKernel);
        forcedExtend = extendKernel == null ? null : variant(extendKernel);
    }

    /** Turns the sm_90a extend kernel off (or back on where the GPU has it), for comparisons. */
    void useSm90Extend(boolean on) {
        sm90Extend = on && context.info().sm90a();
    }

    /**
     * One of the sm_90a kernels' alternatives ("" or one of {@link #SM90_SUFFIXES}); a head dim without that
     * alternative keeps its default kernel.
     */
    void useSm90Variant(String suffix) {
        if (!suffix.isEmpty() && !SM90_SUFFIXES.contains(suffix)) {
            throw new IllegalArgumentException("no sm_90a extend variant " + suffix);
        }
        sm90Suffix = suffix;
    }

    private static String sm90Property(String name, int headDim) {
        String suffix = System.getProperty(name, headDim == 256 ? SM90_DEFAULT_HD256 : SM90_DEFAULT_HD512);
        if (suffix.equals(SM90_PLAIN)) {
            suffix = "";
        }
        String base = headDim == 256 ? SM90_EXTEND_HD256 : SM90_EXTEND_HD512;
        if (!suffix.isEmpty() && (sm90Kernel(base + suffix) == null || sm90Kernel(base + suffix).keysFromValues())) {
            throw new IllegalArgumentException(name + "=" + suffix + ": no kernel " + base + suffix);
        }
        return base + suffix;
    }

    @Override
    public void beginStep(ForwardBatch batch, KvPages pages) {
        context.enter();
        int[] image = AttentionMetadata.image(batch, pages);
        AttentionMetadata.checkNewRowsHavePages(image, kv.writesFull(), kv.writesSliding());
        metadata.upload(batch, image);
        planStep(batch);
        plans.upload(batch, planImage);
    }

    /**
     * Extend items (chunk, first row, weight) heaviest first, in pairs at even positions: each chunk's items by
     * weight taken two at a time (adjacent row ranges of one chunk: the sm_90a cluster kernels' two CTAs share
     * their K/V tiles), the pairs by their heavier item, then the chunks' odd items out. One chunk with an even
     * number of items keeps the plain heaviest-first order.
     */
    static List<int[]> pairedHeaviestFirst(List<int[]> items) {
        List<int[]> sorted = new ArrayList<>(items);
        sorted.sort(Comparator.comparingInt((int[] x) -> -x[2]));
        Map<Integer, List<int[]>> byChunk = new LinkedHashMap<>();
        for (int[] x : sorted) {
            byChunk.computeIfAbsent(x[0], c -> new ArrayList<>()).add(x);
        }
        List<int[][]> pairs = new ArrayList<>();
        List<int[]> single = new ArrayList<>();
        for (List<int[]> l : byChunk.values()) {
            for (int i = 0; i + 1 < l.size(); i += 2) {
                pairs.add(new int[][] {l.get(i), l.get(i + 1)});
            }
            if (l.size() % 2 == 1) {
                single.add(l.get(l.size() - 1));
            }
        }
        pairs.sort(Comparator.comparingInt((int[][] p) -> -p[0][2]));
        List<int[]> out = new ArrayList<>(items.size());
        for (int[][] p : pairs) {
            out.add(p[0]);
            out.add(p[1]);
        }
        single.sort(Comparator.comparingInt((int[] x) -> -x[2]));
        out.addAll(single);
        return out;
    }

    /**
     * Chunk c's work items of {@code per} rows (rows = tokens x group): (chunk, first row, weight: the last visible
     * key, to run the heaviest tiles first).
     */
    private static void addItems(List<int[]> to, int ci, SequenceChunk c, int group, int per) {
        int rows = c.tokens() * group;
        for (int r = 0; r < rows; r += per) {
            int lastToken = (Math.min(r + per, rows) - 1) / group;
            to.add(new int[] {ci, r, c.startPosition() + lastToken});
        }
    }

    /** The step's work lists for every layer kind, into {@link #planImage} and {@link #stepPlans}. */
    private void planStep(ForwardBatch batch) {
        int maxDecodeTokens = 0;
        for (SequenceChunk c : batch.chunks()) {
            if (c.tokens() <= DECODE_MAX_TOKENS) {
                maxDecodeTokens = Math.max(maxDecodeTokens, c.tokens());
            }
        }
        KindPlan[] kindPlans = new KindPlan[kindIndex.size()];
        List<int[]> lists = new ArrayList<>();
        int at = 0;
        for (Map.Entry<Kind, Integer> e : kindIndex.entrySet()) {
            Kind kind = e.getKey();
            Variant decode = decodeVariant(kind.bucket(), Math.max(1, maxDecodeTokens) * kind.group());
            Variant extend = extendVariant(kind.bucket());
            if (forcedDecode != null && forcedDecode.headDimBucket() == kind.bucket()
                    && forcedDecode.rows() >= decode.rows()) {
                decode = forcedDecode;
            }
            if (forcedExtend != null && forcedExtend.headDimBucket() == kind.bucket()) {
                extend = forcedExtend;
            }
            List<int[]> decodeItems = new ArrayList<>();
            List<int[]> extendItems = new ArrayList<>();
            List<int[]> wideItems = new ArrayList<>();
            for (int ci = 0; ci < batch.chunks().size(); ci++) {
                SequenceChunk c = batch.chunks().get(ci);
                if (c.tokens() <= DECODE_MAX_TOKENS) {
                    addItems(decodeItems, ci, c, kind.group(), decode.rows());
                } else {
                    addItems(extendItems, ci, c, kind.group(), extend.rows());
                    if (extend.rows() < 128) {
                        addItems(wideItems, ci, c, kind.group(), 128);
                    }
                }
            }
            extendItems = pairedHeaviestFirst(extendItems);
            wideItems.sort(Comparator.comparingInt((int[] x) -> -x[2]));
            int decodeOffset = at;
            for (int[] x : decodeItems) {
                lists.add(x);
            }
            at += 2 * decodeItems.size();
            int extendOffset = at;
            for (int[] x : extendItems) {
                lists.add(x);
            }
            at += 2 * extendItems.size();
            int wideOffset = at;
            lists.addAll(wideItems);
            at += 2 * wideItems.size();
            kindPlans[e.getValue()] = new KindPlan(decode, decodeOffset, decodeItems.size(), extend, extendOffset,
                    extendItems.size(), wideOffset, wideItems.size());
        }
        int[] image = new int[Math.max(2, at)];
        for (int i = 0; i < lists.size(); i++) {
            image[2 * i] = lists.get(i)[0];
            image[2 * i + 1] = lists.get(i)[1];
        }
        planImage = image;
        stepPlans = kindPlans;
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
        // out's bf16 copy (the o_proj GEMM's operand, Backend.allocateMatmulInput): the sm_90a kernel writes it
        // when it writes every row (no decode items in the step), else the GEMM converts out itself.
        long twin = co.operandToWrite();
        co.written();
        if (tokens == 0) {
            return;
        }
        if (metadata.batch() != batch) {
            beginStep(batch, pages);          // a caller that skipped beginStep (tests): once per batch
        }
        if (layer.writesKv() && k != null) {              // null: the QKV norm stored them (kvWriteTarget)
            kv.write(layer, metadata, CudaTensor.of(k), CudaTensor.of(v));
        }
        // q's values only in its bf16 copy (the QKV norm's bf16 output at prefill, CudaBackend.BF16_Q): the sm_90a
        // kernel's _bq form reads it below in a step of extend chunks only; every other path widens it first.
        long qBf16 = cq.onlyOperand();
        if (cq.fp32Stale() && qBf16 == 0) {
            throw new IllegalStateException("q " + cq + " holds no current values");
        }
        Integer index = kindIndex.get(new Kind(layer.groupSize(), headDimBucket(hd)));
        if (index == null) {
            throw new IllegalArgumentException("layer " + layer.layer() + " was not among the layers this backend "
                    + "was built for");
        }
        KindPlan plan = stepPlans[index];
        long keys = kv.keysAddress(layer);
        DeviceBuffer values = kv.values(layer);
        PagedKvBuffers.KeySource derived = kv.keySource(layer);
        float scaleLog2 = layer.scale() * LOG2E;
        // K stored once: the KD kernel at head dim 512 where its boxes fit and RoPE rotates only the pairs of its
        // derived block; otherwise the mma.sync kernel, which derives any keys. The other sm_90a kernels read K.
        boolean keysFromValues = derived != null && sm90KeysFromValues && hd == 512 && pageSize % TMA_BOX_ROWS == 0
                && 8 * derived.derivedChunks() <= SM90_DERIVED_PAIRS;
        String sm90 = !sm90Extend || (derived != null && !keysFromValues) ? null : switch (plan.extend().kernel()) {
            case "jemma_attn_extend_hd256" -> SM90_EXTEND_HD256;
            case "jemma_attn_extend_hd512" -> SM90_EXTEND_HD512;
            default -> null;
        };
        Sm90Kernel kernel = null;
        if (plan.extendItems() > 0 && sm90 != null && derived != null) {
            kernel = sm90Kernel(SM90_EXTEND_HD512_KEYS_FROM_VALUES);      // sm90 is the hd 512 one: keysFromValues
        } else if (plan.extendItems() > 0 && sm90 != null) {
            kernel = sm90Suffix.isEmpty() ? null : sm90Kernel(sm90 + (sm90Suffix.equals(SM90_PLAIN) ? "" : sm90Suffix));
            if (kernel == null) {
                kernel = sm90Kernel(sm90.equals(SM90_EXTEND_HD256) ? sm90Hd256 : sm90Hd512);
            }
        }
        // The bulk tensor copy needs pages of whole boxes, the kernel's own head dim, a key buffer and tensor maps the
        // driver could encode; otherwise the gather kernel, which takes any of them. K stored once: two maps of the V
        // buffer (the other half's rotating block in boxes of 64 columns, V in boxes of 256), or the mma.sync kernel.
        long[] keyMap = null;
        long[] valueMap = null;
        if (kernel != null && kernel.keysFromValues()) {
            keyMap = tensorMap(values.address(), layer, SM90_DERIVED_PAIRS);
            valueMap = tensorMap(values.address(), layer, TMA_BOX_COLS);
            if (keyMap == null || valueMap == null) {
                kernel = null;
            }
        } else if (kernel != null && kernel.tma()) {
            if (pageSize % TMA_BOX_ROWS == 0 && hd == kernel.headDim() && keys != 0) {
                keyMap = tensorMap(keys, layer, TMA_BOX_COLS);
                valueMap = tensorMap(values.address(), layer, TMA_BOX_COLS);
            }
            if (keyMap == null || valueMap == null) {
                kernel = gatherTwin(kernel);
            }
        }
        if (qBf16 != 0) {
            Sm90Kernel bq = kernel == null || plan.decodeItems() > 0 || (qBf16 & 15) != 0 || cq.cols() % 8 != 0
                    || hd % 8 != 0 ? null : sm90Kernel(kernel.name() + BF16_Q_SUFFIX);
            if (bq != null) {
                kernel = bq;
            } else {
                activations.widened(cq);                // in place: every reader below takes fp32 q
                qBf16 = 0;
            }
        }
        if (plan.decodeItems() > 0) {
            Variant d = plan.decode();
            int splits = splits(d, plan.decodeItems(), layer, batch);
            long acc = 0;
            long ml = 0;
            long used = 0;
            if (splits > 1) {
                long parts = (long) plan.decodeItems() * layer.kvHeads() * splits * d.rows();
                long accBytes = parts * d.headDimBucket() * Float.BYTES;
                long mlBytes = parts * 2 * Float.BYTES;
                long usedBytes = (long) plan.decodeItems() * layer.kvHeads() * Integer.BYTES;
                DeviceBuffer ws = workspace.atLeast(accBytes + mlBytes + usedBytes);
                acc = ws.address();
                ml = acc + accBytes;
                used = ml + mlBytes;
            }
            launch(d, plan.decodeItems(), splits, plan.decodeOffset(), layer, cq, co, keys, values, derived, scaleLog2,
                    acc, ml, used);
            if (splits > 1) {
                context.launch("jemma_attn_merge", plan.decodeItems(), layer.kvHeads(), 1, 256, 0, new KernelArgs()
                        .ptr(co.address()).i64(co.rowStride())
                        .ptr(metadata.address()).ptr(plans.address() + 4L * plan.decodeOffset())
                        .i32(layer.kvHeads()).i32(layer.groupSize()).i32(hd).i32(d.headDimBucket()).i32(d.rows())
                        .i32(splits).ptr(acc).ptr(ml).ptr(used));
            }
        }
        if (kernel != null) {
            // Same work items (128 / 64 rows) as the mma.sync kernel it replaces.
            long extendTwin = plan.decodeItems() == 0 ? twin : 0;
            // The items of the kernel's row count: the plan's extend list, or its 128-row list.
            boolean wide = kernel.rows() != plan.extend().rows();
            int items = wide ? plan.wideItems() : plan.extendItems();
            int offset = wide ? plan.wideOffset() : plan.extendOffset();
            if (wide && (kernel.rows() != 128 || items == 0)) {
                throw new IllegalStateException(kernel + " takes " + kernel.rows() + "-row items, which the plan lacks");
            }
            // Persistent: a block per SM (at most one per item), each walking items k * grid + its index. Clusters:
            // whole clusters (a CTA past the items only takes part in its cluster's barriers); split: a cluster
            // per item.
            int blocks = items * layer.kvHeads();
            int gx = kernel.persistent() ? Math.min(blocks, context.info().multiprocessors())
                    : kernel.split() ? 2 * items
                    : (items + kernel.cluster() - 1) / kernel.cluster() * kernel.cluster();
            int gy = kernel.persistent() ? 1 : layer.kvHeads();
            context.launch(kernel.name(), gx, gy, 1, SM90_THREADS, kernel.sharedBytes(),
                    new KernelArgs()
                            .ptr(qBf16 != 0 ? qBf16 : cq.address()).i64(qBf16 != 0 ? cq.cols() : cq.rowStride())
                            .ptr(co.address()).i64(co.rowStride())
                            .ptr(keys).ptr(values.address())
                            .ptr(metadata.address()).ptr(plans.address() + 4L * offset)
                            .i32(layer.kvHeads()).i32(layer.groupSize()).i32(hd).f32(scaleLog2)
                            .i32(layer.slidingWindow()).i32(layer.slidingWindow() > 0 ? 1 : 0)
                            .ptr(extendTwin).i64(co.cols()).i32(items)
                            .words(kernel.tma() ? keyMap : NO_TENSOR_MAP)
                            .words(kernel.tma() ? valueMap : NO_TENSOR_MAP)
                            .ptr(kernel.keysFromValues() ? derived.weight() : 0)
                            .ptr(kernel.keysFromValues() ? derived.inverseFrequencies() : 0));
            if (extendTwin != 0) {
                co.operand().current(true);
            }
            if (kernel.keysFromValues()) {
                keysFromValuesLaunches++;
            }
        } else if (plan.extendItems() > 0) {
            launch(plan.extend(), plan.extendItems(), 1, plan.extendOffset(), layer, cq, co, keys, values, derived,
                    scaleLog2, 0, 0, 0);
        }
    }

    /** The kernel that replaces a TMA kernel where its boxes do not fit the pages: the default's or its own twin. */
    private Sm90Kernel gatherTwin(Sm90Kernel kernel) {
        String base = kernel.headDim() == 256 ? SM90_EXTEND_HD256 : SM90_EXTEND_HD512;
        if (kernel.name().equals(kernel.headDim() == 256 ? sm90Hd256 : sm90Hd512)) {
            return sm90Kernel(base + (kernel.headDim() == 256 ? GATHER_DEFAULT_HD256 : GATHER_DEFAULT_HD512));
        }
        return sm90Kernel(kernel.name().replace(TMA_SUFFIX, ""));
    }

    /**
     * The tensor map of the KV buffer at {@code address} that {@code layer} reads (slots x (kv heads x head dim)) in
     * boxes of {@link #TMA_BOX_ROWS} slots x {@code boxCols} columns, or null where the driver cannot encode one (then
     * the caller takes another kernel).
     */
    private long[] tensorMap(long address, AttentionLayer layer, int boxCols) {
        long[] map = tensorMaps.computeIfAbsent(new MapKey(address, boxCols), key -> {
            try {
                return TensorMaps.kvPool(address, kv.slotsOf(layer.kvLayer()), (long) layer.kvHeads() * layer.headDim(),
                        TMA_BOX_ROWS, boxCols);
            } catch (RuntimeException e) {
                return NO_TENSOR_MAP;             // a driver without tensor maps: the gather kernels, never an error
            }
        });
        return map == NO_TENSOR_MAP ? null : map;
    }

    private void launch(Variant variant, int items, int splits, int offset, AttentionLayer layer, CudaTensor q,
                        CudaTensor out, long keys, DeviceBuffer values, PagedKvBuffers.KeySource derived,
                        float scaleLog2, long acc, long ml, long used) {
        if (layer.kvHeads() > Grid.MAX_Y) {
            throw new IllegalArgumentException(layer.kvHeads() + " kv heads exceed the grid");
        }
        // K stored once: the _kd twin, which derives the keys from the values (the plain kernel carries none of it).
        String kernel = variant.kernel() + (derived == null ? "" : "_kd");
        context.launch(kernel, items, layer.kvHeads(), splits, variant.threads(), variant.sharedBytes(),
                new KernelArgs()
                        .ptr(q.address()).i64(q.rowStride())
                        .ptr(out.address()).i64(out.rowStride())
                        .ptr(keys).ptr(values.address())
                        .ptr(metadata.address()).ptr(plans.address() + 4L * offset)
                        .i32(layer.kvHeads()).i32(layer.groupSize()).i32(layer.headDim()).f32(scaleLog2)
                        .i32(layer.slidingWindow()).i32(layer.slidingWindow() > 0 ? 1 : 0)
                        .ptr(acc).ptr(ml).ptr(used)
                        .ptr(derived == null ? 0 : derived.weight())
                        .ptr(derived == null ? 0 : derived.inverseFrequencies())
                        .i32(derived == null ? 0 : derived.derivedChunks()));
    }

    /**
     * How many key runs the decode blocks split into: enough blocks to fill the GPU (its SM count times
     * the blocks that fit on one SM) in whole waves, each run at least {@link #MIN_TILES_PER_SPLIT} tiles
     * of the longest decode range (the kernel derives each item's own runs from this count).
     */
    private int splits(Variant d, int items, AttentionLayer layer, ForwardBatch batch) {
        int longest = 0;
        for (SequenceChunk c : batch.chunks()) {
            if (c.tokens() <= DECODE_MAX_TOKENS) {
                // The kernel's range of the chunk's first item (item_range): the widest of the chunk's items.
                int lo = layer.slidingWindow() > 0 ? Math.max(0, c.startPosition() - layer.slidingWindow() + 1) : 0;
                longest = Math.max(longest, c.endPosition() - lo);
            }
        }
        int tiles = Grid.ceilDiv(longest, d.keysPerTile());
        int slots = context.info().multiprocessors() * occupancy(d);
        return chooseSplits((long) items * layer.kvHeads(), tiles, slots);
    }

    /** The split count for {@code blocks} blocks over {@code tiles} key tiles on {@code slots} resident blocks. */
    static int chooseSplits(long blocks, int tiles, int slots) {
        int max = Math.max(1, Math.min(MAX_SPLITS, tiles / MIN_TILES_PER_SPLIT));
        int best = 1;
        double bestEfficiency = efficiency(blocks, slots);
        for (int s = 2; s <= max && blocks * (s - 1) < 4L * slots; s++) {
            double e = efficiency(blocks * s, slots);
            if (e > bestEfficiency + 0.02) {
                best = s;
                bestEfficiency = e;
            }
        }
        return best;
    }

    /** The busy fraction of the slots over the waves {@code blocks} blocks take. */
    private static double efficiency(long blocks, int slots) {
        long waves = (blocks + slots - 1) / slots;
        return (double) blocks / (waves * slots);
    }

    private int occupancy(Variant v) {
        return occupancy.computeIfAbsent(v.kernel(),
                name -> Math.max(1, context.occupancy(name, v.threads(), v.sharedBytes())));
    }

    /** The step's plans and, per launch shape, its decode split count: what a recorded graph freezes. */
    @Override
    public long graphKey() {
        ForwardBatch batch = metadata.batch();
        long key = java.util.Arrays.hashCode(stepPlans);
        for (AttentionLayer l : launchShapes.values()) {
            Integer index = kindIndex.get(new Kind(l.groupSize(), headDimBucket(l.headDim())));
            KindPlan plan = stepPlans[index];
            int splits = plan.decodeItems() > 0 ? splits(plan.decode(), plan.decodeItems(), l, batch) : 0;
            key = 31 * key + splits;
        }
        return key;
    }
}
