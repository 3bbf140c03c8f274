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
 */
final class PagedKvBuffers {
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

    PagedKvBuffers(CudaContext context, List<AttentionLayer> layers, KvGeometry geometry) {
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
        boolean full = false;
        boolean sliding = false;
        context.enter();
        for (AttentionLayer l : layers) {
            if (l.writesKv()) {
                boolean s = l.slidingWindow() > 0;
                long count = s ? geometry.slidingSlots() : geometry.fullSlots();
                long bytes = Math.max(2, count * l.kvHeads() * l.headDim() * 2);
                keys[l.layer()] = context.memory().allocatePermanent(bytes);
                values[l.layer()] = context.memory().allocatePermanent(bytes);
                slots[l.layer()] = count;
                slidingOf[l.layer()] = s;
                widthOf[l.layer()] = l.kvHeads() * l.headDim();
                full |= !s;
                sliding |= s;
            }
        }
        for (AttentionLayer l : layers) {
            if (l.kvLayer() >= n || keys[l.kvLayer()] == null) {
                throw new IllegalArgumentException("layer " + l.layer() + " reads the KV of layer " + l.kvLayer()
                        + ", which writes none");
            }
        }
        anyFull = full;
        anySliding = sliding;
    }

    /** The key buffer {@code layer} reads: its own, or its KV source's. */
    DeviceBuffer keys(AttentionLayer layer) {
        return keys[layer.kvLayer()];
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
                .ptr(keys[layer.layer()].address()).ptr(values[layer.layer()].address()));
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
            if (keys[layer] == null) {
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
                    .ptr(keys[layer].address()).ptr(values[layer].address()));
        }
    }

    /** The slot count of a pool (its layers' buffers all have it). */
    private long poolSlots(boolean sliding) {
        for (int layer = 0; layer < keys.length; layer++) {
            if (keys[layer] != null && slidingOf[layer] == sliding) {
                return slots[layer];
            }
        }
        return 0;
    }
}
