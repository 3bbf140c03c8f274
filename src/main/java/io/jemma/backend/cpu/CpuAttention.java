package io.jemma.backend.cpu;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.SequenceChunk;
import io.jemma.backend.Tensor;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.IntStream;

/**
 * Attention on the CPU over per-sequence KV caches on the heap: exact fp32 softmax, GQA, sliding
 * windows. Parallel over (token, head) pairs.
 */
final class CpuAttention implements AttentionBackend {

    private final List<AttentionLayer> layers;
    /** sequence id -> that sequence's caches, one per layer that writes KV. */
    private final Map<Integer, SequenceCache> caches = new ConcurrentHashMap<>();

    CpuAttention(List<AttentionLayer> layers) {
        this.layers = List.copyOf(layers);
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public void attend(AttentionLayer layer, ForwardBatch batch, Tensor q, Tensor k, Tensor v, Tensor out) {
        CpuTensor cq = CpuTensor.of(q);
        CpuTensor co = CpuTensor.of(out);
        int width = layer.kvHeads() * layer.headDim();
        for (SequenceChunk c : batch.chunks()) {
            LayerCache cache = caches.computeIfAbsent(c.sequenceId(), id -> new SequenceCache(layers.size()))
                    .layer(layer.kvLayer(), width);
            if (layer.writesKv()) {
                cache.store(c.startPosition(), CpuTensor.of(k), CpuTensor.of(v), c.firstRow(), c.tokens());
            } else if (cache.length < c.endPosition()) {
                throw new IllegalStateException("layer " + layer.layer() + " reads layer " + layer.kvLayer()
                        + " of sequence " + c.sequenceId() + " before it was written");
            }
        }
        int heads = layer.heads();
        IntStream.range(0, batch.totalTokens() * heads).parallel().forEach(job -> {
            int row = job / heads;
            int head = job % heads;
            SequenceChunk c = chunkOf(batch, row);
            LayerCache cache = caches.get(c.sequenceId()).layer(layer.kvLayer(), width);
            int position = c.startPosition() + (row - c.firstRow());
            attendOne(layer, cache, position, cq.data(), cq.row(row) + head * layer.headDim(),
                    head / layer.groupSize(), co.data(), co.row(row) + head * layer.headDim());
        });
    }

    /** One query head at one position: softmax(q.K^T * scale) V over the visible positions. */
    private static void attendOne(AttentionLayer layer, LayerCache cache, int position, float[] q, int qo,
                                  int kvHead, float[] out, int oo) {
        int d = layer.headDim();
        int first = layer.firstVisible(position);
        int n = position - first + 1;
        float[] scores = new float[n];
        float max = Float.NEGATIVE_INFINITY;
        int stride = cache.width;
        int headOffset = kvHead * d;
        for (int j = 0; j < n; j++) {
            float s = RowOps.dot(q, qo, cache.keys, (first + j) * stride + headOffset, d) * layer.scale();
            scores[j] = s;
            max = Math.max(max, s);
        }
        float sum = 0;
        for (int j = 0; j < n; j++) {
            scores[j] = (float) Math.exp(scores[j] - max);
            sum += scores[j];
        }
        java.util.Arrays.fill(out, oo, oo + d, 0f);
        for (int j = 0; j < n; j++) {
            RowOps.axpy(scores[j] / sum, cache.values, (first + j) * stride + headOffset, out, oo, d);
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

    @Override
    public void release(int sequenceId) {
        caches.remove(sequenceId);
    }

    @Override
    public void truncate(int sequenceId, int length) {
        SequenceCache s = caches.get(sequenceId);
        if (s != null) {
            for (LayerCache l : s.layers) {
                if (l != null) {
                    l.length = Math.min(l.length, length);
                }
            }
        }
    }

    /** All layers' caches of one sequence. */
    private static final class SequenceCache {
        final LayerCache[] layers;

        SequenceCache(int layerCount) {
            layers = new LayerCache[layerCount];
        }

        LayerCache layer(int index, int width) {
            if (layers[index] == null) {
                layers[index] = new LayerCache(width);
            }
            return layers[index];
        }
    }

    /** Keys and values of one layer of one sequence: {@code [positions, kvHeads * headDim]} each. */
    private static final class LayerCache {
        final int width;
        float[] keys = new float[0];
        float[] values = new float[0];
        int length;

        LayerCache(int width) {
            this.width = width;
        }

        void store(int start, CpuTensor k, CpuTensor v, int firstRow, int tokens) {
            if (start > length) {
                throw new IllegalStateException("gap in the cache: writing position " + start + " after " + length);
            }
            int end = start + tokens;
            if ((long) end * width > keys.length) {
                int capacity = Math.max(end, Math.max(16, keys.length / width * 2));
                keys = java.util.Arrays.copyOf(keys, capacity * width);
                values = java.util.Arrays.copyOf(values, capacity * width);
            }
            for (int i = 0; i < tokens; i++) {
                System.arraycopy(k.data(), k.row(firstRow + i), keys, (start + i) * width, width);
                System.arraycopy(v.data(), v.row(firstRow + i), values, (start + i) * width, width);
            }
            length = end;
        }
    }
}
