package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.gpu;
import static io.jemma.backend.cuda.GpuTests.tensor;
import static io.jemma.backend.cuda.GpuTests.uniform;

import io.jemma.attention.AttentionLayer;
import io.jemma.attention.KeysFromValues;
import io.jemma.backend.DType;
import io.jemma.backend.Weight;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * K stored once in the attention tests: the full layers that write KV are k_eq_v layers whose keys the kernels
 * derive from the cached values, K = rope(V * k_norm) at the key's position (proportional RoPE, theta 1e6,
 * partial_rotary_factor 0.25, as Gemma 4's full layers). The tests' host mirror of the cache takes the keys this
 * class computes from the bf16 values as the kernels use them: in the 8-dim chunks that rotate (derived into the K
 * tile) the fp32 products and rotation rounded to bf16; in the others the exact product v * k_w (the kernels put
 * k_w on q there and read V, so no key is rounded).
 */
final class KeysFromValuesTests {
    /** Per derived layer number: its k_norm weight (host values, bf16-exact) and frequencies. */
    final Map<Integer, float[]> weights = new HashMap<>();
    final Map<Integer, float[]> frequencies = new HashMap<>();
    final List<KeysFromValues> layers = new ArrayList<>();
    /** The device side (what the backends get). */
    final Map<Integer, PagedKvBuffers.KeySource> sources;

    /** Every full layer of {@code all} that writes KV stores K once. */
    KeysFromValuesTests(SplittableRandom r, List<AttentionLayer> all) {
        for (AttentionLayer l : all) {
            if (l.writesKv() && l.slidingWindow() == 0) {
                float[] w = uniform(r, l.headDim(), 0.5, 1.5);
                for (int i = 0; i < w.length; i++) {
                    w[i] = DType.bf16ToFloat(DType.floatToBf16(w[i]));
                }
                float[] f = proportional(l.headDim());
                Weight gw = gpu().load(tensor("k_norm", DType.BF16, new long[] {l.headDim()}, w));
                weights.put(l.layer(), w);
                frequencies.put(l.layer(), f);
                layers.add(new KeysFromValues(l.layer(), gw, f));
            }
        }
        sources = gpu().keySources(all, layers);
    }

    boolean derives(AttentionLayer l) {
        return weights.containsKey(l.kvLayer());
    }

    /** Gemma 4's full-layer frequencies: proportional RoPE, theta 1e6, a quarter of the pairs rotating. */
    static float[] proportional(int headDim) {
        float[] f = new float[headDim / 2];
        int rotating = (int) (0.25 * headDim / 2);
        for (int i = 0; i < rotating; i++) {
            f[i] = (float) (1.0 / Math.pow(1e6, 2.0 * i / headDim));
        }
        return f;
    }

    /**
     * The keys of {@code rows} rows of bf16-exact values {@code v} ({@code [rows, kvHeads * headDim]}) of a derived
     * layer at the given RoPE positions, as the kernels use them (see above).
     */
    float[] keys(AttentionLayer l, float[] v, int rows, int[] positions) {
        int hd = l.headDim();
        int half = hd / 2;
        int width = l.kvHeads() * hd;
        float[] w = weights.get(l.kvLayer());
        float[] f = frequencies.get(l.kvLayer());
        int derivedDims = 8 * PagedKvBuffers.KeySource.derivedChunks(f);
        float[] k = new float[rows * width];
        for (int t = 0; t < rows; t++) {
            for (int h = 0; h < l.kvHeads(); h++) {
                int at = t * width + h * hd;
                for (int d = 0; d < half; d++) {
                    float a = v[at + d] * w[d];
                    float b = v[at + d + half] * w[d + half];
                    if (f[d] != 0) {
                        float angle = f[d] * positions[t];
                        float c = (float) Math.cos(angle);
                        float s = (float) Math.sin(angle);
                        float ra = a * c - b * s;
                        float rb = b * c + a * s;
                        a = ra;
                        b = rb;
                    }
                    boolean derived = d < derivedDims;
                    k[at + d] = derived ? DType.bf16ToFloat(DType.floatToBf16(a)) : a;
                    k[at + d + half] = derived ? DType.bf16ToFloat(DType.floatToBf16(b)) : b;
                }
            }
        }
        return k;
    }
}
