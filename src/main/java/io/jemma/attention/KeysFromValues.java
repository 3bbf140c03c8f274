package io.jemma.attention;

import io.jemma.backend.Weight;

/**
 * K stored once in a k_eq_v layer (jemma.kv-store-k-eq-v-once): the layer's keys are {@code rope(v * kNorm)} of its
 * cached values (V = n, K = rope(n * k_norm_w), the same normalized projection n), so a backend may cache only V and
 * derive each key in its attention kernels at the key's position.
 *
 * @param layer               the decoder layer (it writes KV)
 * @param kNorm               its k_norm weight {@code [headDim]}
 * @param inverseFrequencies  its RoPE frequencies {@code [headDim / 2]} (the array the QKV norm gets, zeros where a
 *                            pair does not rotate)
 */
public record KeysFromValues(int layer, Weight kNorm, float[] inverseFrequencies) {
}
