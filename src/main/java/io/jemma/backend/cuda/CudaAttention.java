package io.jemma.backend.cuda;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.attention.SequenceChunk;
import io.jemma.backend.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Attention on the GPU over paged bf16 KV buffers (attention.cu): every layer that writes KV has a key
 * and a value buffer of {@code [slots, kvHeads, headDim]} bf16 (the layout qkv_norm.cu's fused write
 * uses) in its pool (sliding layers {@link KvGeometry#slidingSlots()}, full layers
 * {@link KvGeometry#fullSlots()}); KV-shared layers read their source layer's.
 *
 * <p>The host flattens the page tables into what the kernels read: the cache slot of every new row (the
 * K/V store), and per chunk the slots of its visible positions, with each query row's (first index,
 * count) into that list. Any page size works, 1 included. This is done once per step for every kind of
 * layer (full, or sliding with its window) in {@link #beginStep}, into device buffers that keep their
 * addresses from step to step, so a captured CUDA graph replays with the new step's lists; a call for a
 * batch that {@code beginStep} did not see builds and uploads its lists itself.
 */
final class CudaAttention implements AttentionBackend {
    static final int MAX_HEAD_DIM = 512;
    private static final int WARPS = 4;

    private final CudaContext context;
    /** Per layer number: the bf16 caches, or null for layers that only read (or are not attention layers). */
    private final DeviceBuffer[] keys;
    private final DeviceBuffer[] values;
    /** Per kind of layer (window; 0 = full attention): the step's lists in fixed-address buffers. */
    private final Map<Integer, StepLists> stepLists = new LinkedHashMap<>();
    private ForwardBatch stepBatch;

    /** One kind of layer's lists for the current step: visible slots, per-row (first, count), new-row slots. */
    private record StepLists(StableInts slots, StableInts rows, StableInts newSlots) implements AutoCloseable {
        @Override
        public void close() {
            slots.close();
            rows.close();
            newSlots.close();
        }
    }

    /** The host-side lists of one kind of layer for one batch. */
    private record Lists(int[] slots, int[] rows, int[] newSlots) {
    }

    CudaAttention(CudaContext context, List<AttentionLayer> layers, KvGeometry geometry) {
        this.context = context;
        int n = 0;
        for (AttentionLayer l : layers) {
            n = Math.max(n, Math.max(l.layer(), l.kvLayer()) + 1);
            if (l.headDim() <= 0 || l.headDim() > MAX_HEAD_DIM) {
                throw new IllegalArgumentException("layer " + l.layer() + ": head dim " + l.headDim()
                        + " (the CUDA attention supports up to " + MAX_HEAD_DIM + ")");
            }
        }
        keys = new DeviceBuffer[n];
        values = new DeviceBuffer[n];
        context.enter();
        for (AttentionLayer l : layers) {
            if (l.writesKv()) {
                long slots = l.slidingWindow() > 0 ? geometry.slidingSlots() : geometry.fullSlots();
                long bytes = Math.max(2, slots * l.kvHeads() * l.headDim() * 2);
                keys[l.layer()] = context.memory().allocatePermanent(bytes);
                values[l.layer()] = context.memory().allocatePermanent(bytes);
                // Zeros, not garbage: a never-written slot (a benchmark's context) must not hold NaN bits.
                context.fill32(keys[l.layer()], 0, bytes / 4, 0);
                context.fill32(values[l.layer()], 0, bytes / 4, 0);
            }
        }
        for (AttentionLayer l : layers) {
            boolean sliding = l.slidingWindow() > 0;
            long slots = sliding ? geometry.slidingSlots() : geometry.fullSlots();
            stepLists.computeIfAbsent(l.slidingWindow(), w -> new StepLists(
                    new StableInts(context, "attention slots", (int) Math.min(Integer.MAX_VALUE - 8, slots + 1024)),
                    new StableInts(context, "attention rows", 2 * 1024),
                    new StableInts(context, "attention new slots", 1024)));
        }
    }

    /** Builds every kind of layer's lists for this batch and copies them to their fixed buffers. */
    @Override
    public void beginStep(ForwardBatch batch, KvPages pages) {
        context.enter();
        for (var e : stepLists.entrySet()) {
            int window = e.getKey();
            Lists l = lists(batch, pages, window);
            StepLists d = e.getValue();
            d.slots().write(l.slots());
            d.rows().write(l.rows());
            d.newSlots().write(l.newSlots());
        }
        stepBatch = batch;
    }

    /** The visible-slot lists of one kind of layer (window 0: full attention) for a batch. */
    private static Lists lists(ForwardBatch batch, KvPages pages, int window) {
        boolean sliding = window > 0;
        int tokens = batch.totalTokens();
        long listSize = 0;
        for (SequenceChunk c : batch.chunks()) {
            listSize += c.endPosition() - firstVisible(window, c.startPosition());
        }
        int[] list = new int[Math.toIntExact(listSize)];
        int[] rows = new int[2 * tokens];
        int[] newSlots = new int[tokens];
        int at = 0;
        for (SequenceChunk c : batch.chunks()) {
            int lo = firstVisible(window, c.startPosition());
            int base = at;
            for (int p = lo; p < c.endPosition(); p++) {
                list[at++] = pages.slot(c.sequenceId(), sliding, p);
            }
            for (int i = 0; i < c.tokens(); i++) {
                int position = c.startPosition() + i;
                int first = firstVisible(window, position);
                int row = c.firstRow() + i;
                rows[2 * row] = base + (first - lo);
                rows[2 * row + 1] = position - first + 1;
                newSlots[row] = list[base + (position - lo)];
            }
        }
        return new Lists(list, rows, newSlots);
    }

    private static int firstVisible(int window, int position) {
        return window > 0 ? Math.max(0, position - window + 1) : 0;
    }

    @Override
    public String name() {
        return "cuda";
    }

    /** The bf16 key and value caches layer {@code layer} reads (tests). */
    DeviceBuffer keys(int layer) {
        return keys[layer];
    }

    DeviceBuffer values(int layer) {
        return values[layer];
    }

    @Override
    public void attend(AttentionLayer layer, ForwardBatch batch, KvPages pages, Tensor q, Tensor k, Tensor v,
                       Tensor out) {
        context.enter();
        int tokens = batch.totalTokens();
        int hd = layer.headDim();
        int width = layer.kvHeads() * hd;
        CudaTensor cq = CudaTensor.of(q);
        CudaTensor co = CudaTensor.of(out);
        if (cq.rows() != tokens || co.rows() != tokens || cq.cols() != layer.heads() * hd
                || co.cols() != layer.heads() * hd) {
            throw new IllegalArgumentException("attention of " + tokens + " rows, " + layer.heads() + " heads x "
                    + hd + ": q " + cq + ", out " + co);
        }
        DeviceBuffer kCache = keys[layer.kvLayer()];
        DeviceBuffer vCache = values[layer.kvLayer()];
        if (kCache == null) {
            throw new IllegalStateException("layer " + layer.layer() + " reads layer " + layer.kvLayer()
                    + ", which has no KV cache");
        }
        if (tokens == 0) {
            return;
        }
        long slotsAt;
        long rowsAt;
        long newSlotsAt;
        StepLists step = stepLists.get(layer.slidingWindow());
        if (batch == stepBatch && step != null) {
            slotsAt = step.slots().address();
            rowsAt = step.rows().address();
            newSlotsAt = step.newSlots().address();
        } else {
            Lists l = lists(batch, pages, layer.slidingWindow());
            long[] dev = context.uploads().put(l.slots(), l.rows(), l.newSlots());
            slotsAt = dev[0];
            rowsAt = dev[1];
            newSlotsAt = dev[2];
        }

        if (layer.writesKv()) {
            CudaTensor ck = CudaTensor.of(k);
            CudaTensor cv = CudaTensor.of(v);
            if (ck.rows() != tokens || cv.rows() != tokens || ck.cols() != width || cv.cols() != width) {
                throw new IllegalArgumentException("new K/V " + ck + ", " + cv + " for " + tokens + " rows of "
                        + width);
            }
            context.launch("jemma_kv_write", tokens, 1, Grid.reductionThreads(width, 256), new KernelArgs()
                    .ptr(ck.address()).i64(ck.rowStride())
                    .ptr(cv.address()).i64(cv.rowStride())
                    .i32(width).ptr(newSlotsAt)
                    .ptr(kCache.address()).ptr(vCache.address()));
        }
        if (layer.heads() > Grid.MAX_Y) {
            throw new IllegalArgumentException(layer.heads() + " heads exceed the grid");
        }
        context.launch("jemma_attention", tokens, layer.heads(), WARPS * 32, new KernelArgs()
                .ptr(cq.address()).i64(cq.rowStride())
                .ptr(co.address()).i64(co.rowStride())
                .ptr(kCache.address()).ptr(vCache.address())
                .i32(layer.heads()).i32(layer.kvHeads()).i32(hd).f32(layer.scale())
                .ptr(slotsAt).ptr(rowsAt));
    }
}
