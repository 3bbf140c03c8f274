package io.jemma.backend.cuda;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.attention.SequenceChunk;
import io.jemma.backend.Tensor;
import java.util.List;

/**
 * Attention on the GPU over paged bf16 KV buffers (attention.cu): every layer that writes KV has a key
 * and a value buffer of {@code [slots, kvHeads, headDim]} bf16 (the layout qkv_norm.cu's fused write
 * uses) in its pool (sliding layers {@link KvGeometry#slidingSlots()}, full layers
 * {@link KvGeometry#fullSlots()}); KV-shared layers read their source layer's.
 *
 * <p>Per call the host flattens the page tables into what the kernels read, in one upload: the cache
 * slot of every new row (the K/V store), and per chunk the slots of its visible positions, with each
 * query row's (first index, count) into that list. Any page size works, 1 included.
 */
final class CudaAttention implements AttentionBackend {
    static final int MAX_HEAD_DIM = 512;
    private static final int WARPS = 4;

    private final CudaContext context;
    /** Per layer number: the bf16 caches, or null for layers that only read (or are not attention layers). */
    private final DeviceBuffer[] keys;
    private final DeviceBuffer[] values;

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
            }
        }
    }

    /**
     * Over KV buffers shared with another backend (the trtllm_mha backend hands its prefill chunks and
     * draft trees to this one): nothing is allocated.
     */
    CudaAttention(CudaContext context, List<AttentionLayer> layers, PagedKvBuffers kv) {
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
        for (int i = 0; i < n; i++) {
            keys[i] = kv.keysOf(i);
            values[i] = kv.valuesOf(i);
        }
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
        boolean sliding = layer.slidingWindow() > 0;

        // The flattened slot lists: per chunk, the slots of [firstVisible(start), end).
        long listSize = 0;
        for (SequenceChunk c : batch.chunks()) {
            listSize += c.endPosition() - layer.firstVisible(c.startPosition());
        }
        int[] list = new int[Math.toIntExact(listSize)];
        int[] rows = new int[2 * tokens];
        int[] newSlots = layer.writesKv() ? new int[tokens] : null;
        int at = 0;
        for (SequenceChunk c : batch.chunks()) {
            int lo = layer.firstVisible(c.startPosition());
            int base = at;
            for (int p = lo; p < c.endPosition(); p++) {
                list[at++] = pages.slot(c.sequenceId(), sliding, p);
            }
            for (int i = 0; i < c.tokens(); i++) {
                int position = c.startPosition() + i;
                int first = layer.firstVisible(position);
                int row = c.firstRow() + i;
                rows[2 * row] = base + (first - lo);
                rows[2 * row + 1] = position - first + 1;
                if (newSlots != null) {
                    newSlots[row] = list[base + (position - lo)];
                }
            }
        }
        long[] dev = context.uploads().put(list, rows, newSlots);

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
                    .i32(width).ptr(dev[2])
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
                .ptr(dev[0]).ptr(dev[1]));
    }
}
