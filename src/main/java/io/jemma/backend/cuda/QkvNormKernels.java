package io.jemma.backend.cuda;

import io.jemma.backend.QkvNormMode;

/**
 * Launches qkv_norm.cu: the fused per-head RMSNorm + weight + RoPE of Gemma 4's q, k and v, optionally
 * writing the new K and V rows into a paged bf16 KV cache in the same pass.
 */
final class QkvNormKernels {
    private final CudaContext context;
    /**
     * Device copies of RoPE frequency tables, by array identity: a model passes the same table per layer
     * every step, so it is uploaded once (and a captured graph can refer to it).
     */
    private final java.util.Map<float[], DeviceBuffer> frequencies = new java.util.WeakHashMap<>();

    QkvNormKernels(CudaContext context) {
        this.context = context;
    }

    /** The device copy of a frequency table (uploaded once; attention derives K = V stored once with it too). */
    long frequencies(float[] invFreq) {
        DeviceBuffer b = frequencies.get(invFreq);
        if (b == null) {
            b = context.memory().allocate(Math.max(4, (long) invFreq.length * Float.BYTES));
            java.lang.foreign.MemorySegment src = java.lang.foreign.MemorySegment.ofArray(invFreq.clone());
            context.transfers().upload((offset, dst) -> java.lang.foreign.MemorySegment.copy(src, offset, dst, 0,
                    dst.byteSize()), src.byteSize(), b, 0);
            frequencies.put(invFreq, b);
        }
        return b.address();
    }

    /** Where the fused pass also stores K and V: cache row {@code slots[t]} for token row t. */
    record KvWrite(int[] slots, DeviceBuffer kCache, DeviceBuffer vCache) {
    }

    /**
     * The same through the step's attention metadata (the block tables of the sliding or the full pool), as
     * jemma_paged_kv_write finds the rows: nothing is uploaded, so a captured graph replays with the step's pages.
     */
    record MetadataKvWrite(AttentionMetadata metadata, boolean sliding, DeviceBuffer kCache, DeviceBuffer vCache) {
    }

    /** Warps per block of the fast kernel: many tokens want big blocks, a decode step wants many blocks. */
    private static int warpsPerBlock(long items) {
        return items >= 4096 ? 8 : 2;
    }

    /**
     * @param q         [tokens, heads * headDim], in place
     * @param k         [tokens, kvHeads * headDim], in place (null in Q_ONLY)
     * @param v         [tokens, kvHeads * headDim] (null in Q_ONLY; written in QK_EQ_V)
     * @param positions [tokens]
     * @param invFreq   [headDim / 2]
     * @param kv        cache write, or null; bf16 caches laid out [cache rows, kvHeads, headDim]
     * @param positionsAt the device address of {@code positions} when they are already there (the step's), else 0
     */
    void apply(QkvNormMode mode, CudaTensor q, CudaTensor k, CudaTensor v, int headDim, CudaWeight qWeight,
               CudaWeight kWeight, float eps, int[] positions, float[] invFreq, KvWrite kv, long positionsAt) {
        apply(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq, kv, null, positionsAt, null);
    }

    /**
     * Whether the bf16-input warp kernels take this shape: as the fp32 ones (head dim up to 512, half % 4 == 0,
     * 16-byte aligned rows and weights).
     */
    static boolean takesBf16(QkvNormMode mode, CudaTensor q, CudaTensor k, CudaTensor v, int headDim,
                             CudaWeight qWeight, CudaWeight kWeight) {
        return warpFits(mode, q, k, v, headDim, qWeight, kWeight);
    }

    private static boolean warpFits(QkvNormMode mode, CudaTensor q, CudaTensor k, CudaTensor v, int headDim,
                                    CudaWeight qWeight, CudaWeight kWeight) {
        boolean hasKv = mode != QkvNormMode.Q_ONLY;
        int half = headDim / 2;
        return half % 4 == 0 && half <= 4 * 32 * 2
                && Grid.vec4(q.address(), q.rowStride(), headDim)
                && (qWeight.address() & 15) == 0 && (kWeight == null || (kWeight.address() & 15) == 0)
                && (!hasKv || (Grid.vec4(k.address(), k.rowStride(), headDim)
                && Grid.vec4(v.address(), v.rowStride(), headDim)));
    }

    /** The same with the cache rows from the step's metadata ({@code meta}; null: no cache write). */
    void apply(QkvNormMode mode, CudaTensor q, CudaTensor k, CudaTensor v, int headDim, CudaWeight qWeight,
               CudaWeight kWeight, float eps, int[] positions, float[] invFreq, MetadataKvWrite meta,
               long positionsAt) {
        apply(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq, null, meta, positionsAt, null);
    }

    /**
     * The same reading q, k and v from their projections' bf16 outputs ({@code in}: the contiguous bf16 [tokens,
     * cols] addresses of q, k, v; v's 0 in QK_EQ_V) where {@link #takesBf16} holds; with a cache write, k's and v's
     * fp32 results are not stored (attention reads the cache). {@code kv} or {@code meta} (or neither) as above.
     */
    void apply(QkvNormMode mode, CudaTensor q, CudaTensor k, CudaTensor v, int headDim, CudaWeight qWeight,
               CudaWeight kWeight, float eps, int[] positions, float[] invFreq, KvWrite kv, MetadataKvWrite meta,
               long positionsAt, long[] in) {
        apply(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq, kv, meta, positionsAt, in, false);
    }

    /**
     * The same; with {@code qBf16} (and bf16 inputs, {@code in} non-null) q's result is stored only as bf16, in place
     * over its input copy {@code in[0]}, not into q's fp32 memory (the _bq kernels: the sm_90a prefill attention reads
     * bf16 Q; the caller marks q's copy as the only current form).
     */
    void apply(QkvNormMode mode, CudaTensor q, CudaTensor k, CudaTensor v, int headDim, CudaWeight qWeight,
               CudaWeight kWeight, float eps, int[] positions, float[] invFreq, KvWrite kv, MetadataKvWrite meta,
               long positionsAt, long[] in, boolean qBf16) {
        if (qBf16 && in == null) {
            throw new IllegalArgumentException("bf16 q output needs the bf16 inputs");
        }
        if (q.rows() == 0) {
            return;
        }
        long slotsAt = 0;
        if (positionsAt == 0 || kv != null) {
            long[] at = context.uploads().put(positionsAt == 0 ? positions : null, kv == null ? null : kv.slots());
            positionsAt = positionsAt == 0 ? at[0] : positionsAt;
            slotsAt = at[1];
        }
        long metaAt = meta == null ? 0 : meta.metadata().address();
        int sliding = meta != null && meta.sliding() ? 1 : 0;
        DeviceBuffer kCache = kv != null ? kv.kCache() : meta != null ? meta.kCache() : null;
        DeviceBuffer vCache = kv != null ? kv.vCache() : meta != null ? meta.vCache() : null;
        launch(mode, q, k, v, headDim, qWeight, kWeight, eps, positionsAt, frequencies(invFreq), slotsAt, metaAt,
                sliding, kCache, vCache, in, qBf16);
    }

    /**
     * The same with positions and cache rows already on the device (nothing uploaded: capturable as is), the
     * write to cache row {@code slots[t]} when the caches are given: QkvNormBenchmark's fused side.
     */
    void applyResident(QkvNormMode mode, CudaTensor q, CudaTensor k, CudaTensor v, int headDim, CudaWeight qWeight,
                       CudaWeight kWeight, float eps, long positionsAt, float[] invFreq, long slotsAt,
                       DeviceBuffer kCache, DeviceBuffer vCache) {
        if (q.rows() > 0) {
            launch(mode, q, k, v, headDim, qWeight, kWeight, eps, positionsAt, frequencies(invFreq), slotsAt, 0, 0,
                    kCache, vCache, null, false);
        }
    }

    private static int modeCode(QkvNormMode mode) {
        return switch (mode) {
            case Q_ONLY -> 0;
            case QK_EQ_V -> 1;
            case QKV -> 2;
        };
    }

    /** One JemmaQkvNormArgs (qkv_norm.cu): the pointers and strides, then the 4-byte fields. */
    private static KernelArgs args(QkvNormMode mode, CudaTensor q, CudaTensor k, CudaTensor v, int headDim,
                                   CudaWeight qWeight, CudaWeight kWeight, float eps, long positionsAt, long invFreqAt,
                                   long slotsAt, long metaAt, int sliding, DeviceBuffer kCache, DeviceBuffer vCache,
                                   int heads, int kvHeads, int slots, int token0) {
        boolean hasKv = mode != QkvNormMode.Q_ONLY;
        return new KernelArgs().words(
                q.address(), hasKv ? k.address() : 0, hasKv ? v.address() : 0,
                q.rowStride(), hasKv ? k.rowStride() : 0, hasKv ? v.rowStride() : 0,
                qWeight.address(), kWeight == null ? 0 : kWeight.address(), positionsAt, invFreqAt, slotsAt, metaAt,
                kCache == null ? 0 : kCache.address(), vCache == null ? 0 : vCache.address(),
                KernelArgs.pack(modeCode(mode), heads), KernelArgs.pack(kvHeads, headDim),
                KernelArgs.pack(slots, token0), KernelArgs.pack(sliding, Float.floatToRawIntBits(eps)));
    }

    private void launch(QkvNormMode mode, CudaTensor q, CudaTensor k, CudaTensor v, int headDim, CudaWeight qWeight,
                        CudaWeight kWeight, float eps, long positionsAt, long invFreqAt, long slotsAt, long metaAt,
                        int sliding, DeviceBuffer kCache, DeviceBuffer vCache, long[] in, boolean qBf16) {
        int tokens = q.rows();
        int heads = q.cols() / headDim;
        int kvHeads = mode == QkvNormMode.Q_ONLY ? 0 : k.cols() / headDim;
        int slots = switch (mode) {
            case Q_ONLY -> heads;
            case QK_EQ_V -> heads + kvHeads;
            case QKV -> heads + 2 * kvHeads;
        };
        boolean hasKv = mode != QkvNormMode.Q_ONLY;
        int half = headDim / 2;
        long items = (long) tokens * slots;
        boolean fast = warpFits(mode, q, k, v, headDim, qWeight, kWeight) && (invFreqAt & 15) == 0;
        if (in != null && !fast) {
            throw new IllegalStateException("bf16 q/k/v for a QKV norm shape the warp kernels do not take: " + q);
        }
        if (!fast) {
            context.launch("jemma_qkv_norm", tokens, slots, Grid.reductionThreads(half, 1024),
                    args(mode, q, k, v, headDim, qWeight, kWeight, eps, positionsAt, invFreqAt, slotsAt, metaAt,
                            sliding, kCache, vCache, heads, kvHeads, slots, 0));
            return;
        }
        // The warp kernel of this shape: passes of 4 columns per lane and half (one up to head dim 256, two up to
        // 512), the mode, and where the cache rows come from (none, explicit slots, the step's metadata).
        int cache = !hasKv ? 0 : slotsAt != 0 ? 1 : metaAt != 0 ? 2 : 0;
        String kernel = "jemma_qkv_norm_w" + (half <= 4 * 32 ? 1 : 2) + "_m" + modeCode(mode) + "_c" + cache
                + (in != null ? (qBf16 ? "_bq" : "_b") : "");
        int warps = Math.min(warpsPerBlock(items), slots);
        for (int t0 = 0; t0 < tokens; t0 += Grid.MAX_Y) {
            KernelArgs a = args(mode, q, k, v, headDim, qWeight, kWeight, eps, positionsAt, invFreqAt, slotsAt, metaAt,
                    sliding, kCache, vCache, heads, kvHeads, slots, t0);
            if (in != null) {
                a.ptr(in[0]).ptr(in[1]).ptr(in[2]);
            }
            context.launch(kernel, Grid.ceilDiv(slots, warps), Math.min(Grid.MAX_Y, tokens - t0), 32 * warps, a);
        }
    }
}
