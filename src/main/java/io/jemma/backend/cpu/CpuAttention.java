package io.jemma.backend.cpu;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.attention.SequenceChunk;
import io.jemma.backend.Tensor;

import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Attention on the CPU over paged KV buffers on the heap: exact fp32 softmax, GQA, sliding windows.
 * Every layer that writes KV has a key and a value buffer of {@code slots x kvHeads * headDim} floats in
 * its pool; KV-shared layers read their source layer's. Parallel over (token, head) pairs.
 */
final class CpuAttention implements AttentionBackend {

    /** Per layer: [slots * width] keys and values, or null for layers that only read. */
    private final float[][] keys;
    private final float[][] values;
    private final List<AttentionLayer> layers;

    CpuAttention(List<AttentionLayer> layers, KvGeometry geometry) {
        this.layers = List.copyOf(layers);
        keys = new float[layers.size()][];
        values = new float[layers.size()][];
        for (AttentionLayer l : layers) {
            if (l.writesKv()) {
                long slots = l.slidingWindow() > 0 ? geometry.slidingSlots() : geometry.fullSlots();
                long size = slots * l.kvHeads() * l.headDim();
                if (size > Integer.MAX_VALUE - 8) {
                    throw new IllegalArgumentException("layer " + l.layer() + ": " + slots
                            + " KV slots do not fit a Java array; lower the KV budget");
                }
                keys[l.layer()] = new float[(int) size];
                values[l.layer()] = new float[(int) size];
            }
        }
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public void copyKv(KvPages pages, int sequenceId, int[] from, int[] to) {
        if (from.length != to.length) {
            throw new IllegalArgumentException(from.length + " sources for " + to.length + " destinations");
        }
        for (AttentionLayer l : layers) {
            if (!l.writesKv()) {
                continue;
            }
            boolean sliding = l.slidingWindow() > 0;
            int width = l.kvHeads() * l.headDim();
            for (int i = 0; i < from.length; i++) {
                int src = pages.slot(sequenceId, sliding, from[i]) * width;
                int dst = pages.slot(sequenceId, sliding, to[i]) * width;
                System.arraycopy(keys[l.layer()], src, keys[l.layer()], dst, width);
                System.arraycopy(values[l.layer()], src, values[l.layer()], dst, width);
            }
        }
    }

    @Override
    public void attend(AttentionLayer layer, ForwardBatch batch, KvPages pages, Tensor q, Tensor k, Tensor v,
                       Tensor out) {
        boolean sliding = layer.slidingWindow() > 0;
        int width = layer.kvHeads() * layer.headDim();
        float[] kBuf = keys[layer.kvLayer()];
        float[] vBuf = values[layer.kvLayer()];
        if (layer.writesKv()) {
            CpuTensor ck = CpuTensor.of(k);
            CpuTensor cv = CpuTensor.of(v);
            for (SequenceChunk c : batch.chunks()) {
                for (int i = 0; i < c.tokens(); i++) {
                    int slot = pages.slot(c.sequenceId(), sliding, c.startPosition() + i);
                    System.arraycopy(ck.data(), ck.row(c.firstRow() + i), kBuf, slot * width, width);
                    System.arraycopy(cv.data(), cv.row(c.firstRow() + i), vBuf, slot * width, width);
                }
            }
        }
        CpuTensor cq = CpuTensor.of(q);
        CpuTensor co = CpuTensor.of(out);
        int heads = layer.heads();
        IntStream.range(0, batch.totalTokens() * heads).parallel().forEach(job -> {
            int row = job / heads;
            int head = job % heads;
            SequenceChunk c = chunkOf(batch, row);
            int[] slots = visibleSlots(layer, c, row - c.firstRow(), pages, sliding, width);
            int headOffset = (head / layer.groupSize()) * layer.headDim();
            attendOne(layer, slots, headOffset, kBuf, vBuf, cq.data(), cq.row(row) + head * layer.headDim(),
                    co.data(), co.row(row) + head * layer.headDim());
        });
    }

    /**
     * The buffer offsets a chunk's token {@code i} attends to: the cached positions before the chunk that
     * its window reaches, then the chunk's own tokens it sees (all earlier ones, or its tree ancestors),
     * which are stored at slots {@code start + j} whatever their tree positions.
     */
    private static int[] visibleSlots(AttentionLayer layer, SequenceChunk c, int i, KvPages pages, boolean sliding,
                                      int width) {
        int start = c.startPosition();
        int first = Math.min(layer.firstVisible(c.position(i)), start);
        int[] slots = new int[start - first + i + 1];
        int n = 0;
        for (int p = first; p < start; p++) {
            slots[n++] = pages.slot(c.sequenceId(), sliding, p) * width;
        }
        for (int j = 0; j <= i; j++) {
            if (c.sees(i, j) && c.position(i) - c.position(j) < windowOrMax(layer)) {
                slots[n++] = pages.slot(c.sequenceId(), sliding, start + j) * width;
            }
        }
        return Arrays.copyOf(slots, n);
    }

    private static int windowOrMax(AttentionLayer layer) {
        return layer.slidingWindow() > 0 ? layer.slidingWindow() : Integer.MAX_VALUE;
    }

    /** One query head: softmax(q.K^T * scale) V over the visible rows {@code slots}. */
    private static void attendOne(AttentionLayer layer, int[] slots, int headOffset, float[] kBuf, float[] vBuf,
                                  float[] q, int qo, float[] out, int oo) {
        int d = layer.headDim();
        float[] scores = new float[slots.length];
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < slots.length; j++) {
            float s = VectorMath.dot(q, qo, kBuf, slots[j] + headOffset, d) * layer.scale();
            scores[j] = s;
            max = Math.max(max, s);
        }
        float sum = 0;
        for (int j = 0; j < slots.length; j++) {
            scores[j] = (float) Math.exp(scores[j] - max);
            sum += scores[j];
        }
        Arrays.fill(out, oo, oo + d, 0f);
        for (int j = 0; j < slots.length; j++) {
            VectorMath.axpy(scores[j] / sum, vBuf, slots[j] + headOffset, out, oo, d);
        }
    }

    private static SequenceChunk chunkOf(ForwardBatch batch, int row) {
        List<SequenceChunk> chunks = batch.chunks();
        int lo = 0;
        int hi = chunks.size() - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (chunks.get(mid).firstRow() <= row) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return chunks.get(lo);
    }
}
