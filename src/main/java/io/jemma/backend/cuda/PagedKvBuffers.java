package io.jemma.backend.cuda;

import io.jemma.attention.AttentionLayer;
import io.jemma.attention.KvGeometry;
import java.util.List;

/**
 * The paged bf16 KV cache on the GPU, shared by the attention backends (switching backends changes no
 * stored data): every layer that writes KV has a key and a value buffer of {@code [slots, kvHeads,
 * headDim]} bf16, slot = physical page * pageSize + offset (the layout qkv_norm.cu's fused write uses);
 * sliding layers' buffers have {@link KvGeometry#slidingSlots()} slots (the sliding pool), full layers'
 * {@link KvGeometry#fullSlots()} (the full pool). KV-shared layers own none and read their source
 * layer's ({@link AttentionLayer#kvLayer()}). The step's block tables ({@link AttentionMetadata}) map a
 * sequence position to its slot.
 *
 * <p>K stored once: a k_eq_v layer given a {@link KeySource} owns a value buffer only; the QKV norm and the K/V
 * store write V alone (a null key pointer), and the attention kernels derive each key from its value, K =
 * rope(V * k_norm) at the key's position ({@link #keySource}).
 */
final class PagedKvBuffers {
    /**
     * Where the attention kernels find what derives a K-stored-once layer's keys from its values: the device
     * addresses of its fp32 k_norm weight {@code [headDim]} and RoPE frequencies {@code [headDim / 2]} (16-byte
     * aligned, as the kernels' vector loads need), and how many 8-dim chunks of each half of a head rotate (the
     * pairs up to the last nonzero frequency, rounded up): only those are derived into the K tile; in the others K =
     * V * k_w, which the kernels apply to q instead (31B's full layers: 8 of 32 chunks per half).
     */
    record KeySource(long weight, long inverseFrequencies, int derivedChunks) {
        KeySource {
            if (weight == 0 || inverseFrequencies == 0 || (weight & 15) != 0 || (inverseFrequencies & 15) != 0
                    || derivedChunks < 0) {
                throw new IllegalArgumentException("K from V needs 16-byte aligned weight and frequency vectors");
            }
        }

        /** The chunks of 8 pairs that hold every nonzero frequency. */
        static int derivedChunks(float[] inverseFrequencies) {
            int last = -1;
            for (int i = 0; i < inverseFrequencies.length; i++) {
                if (inverseFrequencies[i] != 0) {
                    last = i;
                }
            }
            return (last + 1 + 7) / 8;
        }
    }

    private final CudaContext context;
    /** Per layer number: the buffers it owns (null for KV-shared layers and non-attention numbers). */
    private final DeviceBuffer[] keys;
    private final DeviceBuffer[] values;
    private final long[] slots;
    /** Per layer number: whether its buffers are in the sliding pool, and their row width (kvHeads * headDim). */
    private final boolean[] slidingOf;
    private final int[] widthOf;
    private final boolean anyFull;
    private final boolean anySliding;
    /** Per layer number: its K source when it stores K once (no key buffer), else null. */
    private final KeySource[] keySources;

    PagedKvBuffers(CudaContext context, List<AttentionLayer> layers, KvGeometry geometry) {
        this(context, layers, geometry, java.util.Map.of());
    }

    /** @param derived the layers that store K once (k_eq_v layers that write KV), by layer number */
    PagedKvBuffers(CudaContext context, List<AttentionLayer> layers, KvGeometry geometry,
                   java.util.Map<Integer, KeySource> derived) {
        this.context = context;
        int n = 0;
        for (AttentionLayer l : layers) {
            n = Math.max(n, Math.max(l.layer(), l.kvLayer()) + 1);
        }
        keys = new DeviceBuffer[n];
        values = new DeviceBuffer[n];
        slots = new long[n];
        slidingOf = new boolean[n];
        widthOf = new int[n];
        keySources = new KeySource[n];
        boolean full = false;
        boolean sliding = false;
        context.enter();
        for (AttentionLayer l : layers) {
            if (l.writesKv()) {
                boolean s = l.slidingWindow() > 0;
                long count = s ? geometry.slidingSlots() : geometry.fullSlots();
                long bytes = Math.max(2, count * l.kvHeads() * l.headDim() * 2);
                KeySource source = derived.get(l.layer());
                if (source != null && (l.headDim() % 16 != 0 || l.headDim() > TritonAttention.MAX_HEAD_DIM)) {
                    throw new IllegalArgumentException("layer " + l.layer() + ": K from V needs a head dim that is a "
                            + "multiple of 16, not " + l.headDim());
                }
                keySources[l.layer()] = source;
                keys[l.layer()] = source != null ? null : context.memory().allocatePermanent(bytes);
                values[l.layer()] = context.memory().allocatePermanent(bytes);
                slots[l.layer()] = count;
                slidingOf[l.layer()] = s;
                widthOf[l.layer()] = l.kvHeads() * l.headDim();
                full |= !s;
                sliding |= s;
            }
        }
        for (AttentionLayer l : layers) {
            if (l.kvLayer() >= n || values[l.kvLayer()] == null) {
                throw new IllegalArgumentException("layer " + l.layer() + " reads the KV of layer " + l.kvLayer()
                        + ", which writes none");
            }
        }
        anyFull = full;
        anySliding = sliding;
    }

    /** The key buffer {@code layer} reads: its own, or its KV source's; null when that stores K once. */
    DeviceBuffer keys(AttentionLayer layer) {
        return keys[layer.kvLayer()];
    }

    /** The device address of the key buffer {@code layer} reads, 0 when its KV source stores K once. */
    long keysAddress(AttentionLayer layer) {
        return ownKeysAddress(layer.kvLayer());
    }

    /** The device address of layer number {@code layer}'s own key buffer, 0 when it stores K once. */
    private long ownKeysAddress(int layer) {
        return keys[layer] == null ? 0 : keys[layer].address();
    }

    /** How the keys of the cache {@code layer} reads derive from its values, or null when they are cached. */
    KeySource keySource(AttentionLayer layer) {
        return layer.kvLayer() < keySources.length ? keySources[layer.kvLayer()] : null;
    }

    /** Whether layer number {@code layer} stores K once (no key buffer). */
    boolean storesKeyOnce(int layer) {
        return keySources[layer] != null;
    }

    DeviceBuffer values(AttentionLayer layer) {
        return values[layer.kvLayer()];
    }

    /** The key buffer owned by layer number {@code layer} (null if it writes none). */
    DeviceBuffer keysOf(int layer) {
        return keys[layer];
    }

    DeviceBuffer valuesOf(int layer) {
        return values[layer];
    }

    /** Slots in the buffers layer number {@code layer} owns. */
    long slotsOf(int layer) {
        return slots[layer];
    }

    /** Whether some layer writes the full pool, the sliding pool. */
    boolean writesFull() {
        return anyFull;
    }

    boolean writesSliding() {
        return anySliding;
    }

    /**
     * Where the fused QKV norm stores a layer's new K/V rows this step (the attention backends hand it out
     * through {@code kvWriteTarget}): the layer's own buffers, through the block tables of its pool in the
     * step's {@code metadata} (read at launch time: its address may change when a bigger step comes).
     */
    record Target(AttentionLayer layer, AttentionMetadata metadata, DeviceBuffer keys, DeviceBuffer values)
            implements io.jemma.attention.KvWriteTarget {
        QkvNormKernels.MetadataKvWrite write() {
            return new QkvNormKernels.MetadataKvWrite(metadata, layer.slidingWindow() > 0, keys, values);
        }
    }

    /** The target of a layer that writes KV, through {@code metadata} (uploaded for this step). */
    Target target(AttentionLayer layer, AttentionMetadata metadata) {
        if (!layer.writesKv()) {
            throw new IllegalArgumentException("layer " + layer.layer() + " writes no KV");
        }
        return new Target(layer, metadata, keys[layer.layer()], values[layer.layer()]);
    }

    /**
     * Stores the step's new K/V rows of a layer that writes KV (paged_kv.cu): row r goes to its chunk's
     * position start + (r - firstRow) through the block tables of {@code metadata} (uploaded for this batch).
     *
     * @param k {@code [tokens, kvHeads * headDim]} fp32 (column views allowed)
     * @param v likewise
     */
    void write(AttentionLayer layer, AttentionMetadata metadata, CudaTensor k, CudaTensor v) {
        if (!layer.writesKv()) {
            throw new IllegalArgumentException("layer " + layer.layer() + " writes no KV");
        }
        int tokens = metadata.image()[AttentionMetadata.H_TOKENS];
        int width = layer.kvHeads() * layer.headDim();
        if (k.rows() != tokens || v.rows() != tokens || k.cols() != width || v.cols() != width) {
            throw new IllegalArgumentException("new K/V " + k + ", " + v + " for " + tokens + " rows of " + width);
        }
        if (tokens == 0) {
            return;
        }
        boolean vec4 = Grid.vec4(k.address(), k.rowStride(), width) && Grid.vec4(v.address(), v.rowStride(), width);
        int threads = Grid.reductionThreads(vec4 ? width / 4 : width, 256);
        context.launch("jemma_paged_kv_write", tokens, 1, threads, new KernelArgs()
                .ptr(k.address()).i64(k.rowStride())
                .ptr(v.address()).i64(v.rowStride())
                .i32(width).ptr(metadata.address()).i32(layer.slidingWindow() > 0 ? 1 : 0).i32(vec4 ? 1 : 0)
                .ptr(ownKeysAddress(layer.layer()))
                .ptr(values[layer.layer()].address()));
    }

    /**
     * Copies one sequence's cached K/V rows from positions {@code from[i]} to {@code to[i]}, in order, in every
     * layer that owns buffers, each through its own pool's page table (paged_kv.cu's jemma_paged_kv_copy,
     * one launch per layer; not for graph capture: the slot lists are uploaded here).
     */
    void copy(io.jemma.attention.KvPages pages, int sequenceId, int[] from, int[] to) {
        if (from.length != to.length) {
            throw new IllegalArgumentException(from.length + " sources for " + to.length + " destinations");
        }
        if (from.length == 0) {
            return;
        }
        // Both pools' slot lists, uploaded together: [full src, full dst, sliding src, sliding dst].
        int[][] lists = new int[4][];
        for (int pool = 0; pool < 2; pool++) {
            boolean s = pool == 1;
            if (s ? !anySliding : !anyFull) {
                continue;
            }
            long poolSlots = poolSlots(s);
            int[] src = new int[from.length];
            int[] dst = new int[to.length];
            for (int i = 0; i < from.length; i++) {
                src[i] = pages.slot(sequenceId, s, from[i]);
                dst[i] = pages.slot(sequenceId, s, to[i]);
                if (src[i] < 0 || dst[i] < 0 || src[i] >= poolSlots || dst[i] >= poolSlots) {
                    throw new IllegalArgumentException("sequence " + sequenceId + ": KV move " + from[i] + " -> "
                            + to[i] + " maps to slots " + src[i] + " -> " + dst[i] + " outside the "
                            + (s ? "sliding" : "full") + " pool of " + poolSlots);
                }
            }
            lists[2 * pool] = src;
            lists[2 * pool + 1] = dst;
        }
        long[] at = context.uploads().put((Object[]) lists);
        for (int layer = 0; layer < keys.length; layer++) {
            if (values[layer] == null) {
                continue;
            }
            int pool = slidingOf[layer] ? 1 : 0;
            int width = widthOf[layer];
            if (width % 8 != 0) {
                throw new IllegalStateException("layer " + layer + ": KV row width " + width + " is not a multiple of 8");
            }
            int threads = Math.min(256, Grid.ceilDiv(width / 8, 32) * 32);
            context.launch("jemma_paged_kv_copy", Grid.ceilDiv(width / 8, threads), 1, threads, new KernelArgs()
                    .ptr(at[2 * pool]).ptr(at[2 * pool + 1]).i32(from.length).i32(width)
                    .ptr(ownKeysAddress(layer)).ptr(values[layer].address()));
        }
    }

    /** The slot count of a pool (its layers' buffers all have it). */
    private long poolSlots(boolean sliding) {
        for (int layer = 0; layer < keys.length; layer++) {
            if (values[layer] != null && slidingOf[layer] == sliding) {
                return slots[layer];
            }
        }
        return 0;
    }
}
