// RoPE on its own (half-split rotate_half form, as transformers' apply_rotary_pos_emb): x = rope(x) in
// place at each row's position. Jemma's model does not launch it (the fused qkv_norm.cu rotates in the
// same pass as the norms); it exists for the comparison with the unfused sequence (separate norms, RoPE,
// cache write) in QkvNormBenchmark, and computes exactly what qkv_norm.cu's rotation does.
//
// One block per (token, head): grid (tokens, heads), a thread per rotated pair (t, t + head_dim / 2).
#include "jemma_common.cuh"

// x: [tokens, heads * head_dim] (row stride xs); positions: [tokens]; inv_freq: [head_dim / 2].
extern "C" __global__ void jemma_rope(float* x, int64_t xs, int head_dim, const int* __restrict__ positions,
                                      const float* __restrict__ inv_freq) {
    const int64_t token = blockIdx.x;
    const int half = head_dim / 2;
    const int t = threadIdx.x;
    if (t >= half) {
        return;
    }
    float* h = x + token * xs + (int64_t) blockIdx.y * head_dim;
    const float a = h[t];
    const float b = h[t + half];
    float s, c;
    jemma_rope_sincos(inv_freq[t], (float) positions[token], &s, &c);
    h[t] = a * c - b * s;
    h[t + half] = b * c + a * s;
}
