// The fused Gemma 4 QKV norm: per (token, head) one rms, the weight, and RoPE at the row's position,
// in place, straight after the projections; optionally also the write of the new K and V rows into the
// paged bf16 KV cache, so that attention needs no separate pass over them.
//
// One block per (token, head slot): grid (tokens, head slots). Thread t owns the RoPE pair
// (t, t + head_dim / 2) of its head, so the rotation needs no exchange between threads. Head slots:
//   [0, heads)                    q heads:   q = rope(rms(q) * q_w)
//   [heads, heads + kv)           k heads:   QKV:     k = rope(rms(k) * k_w)
//                                            QK_EQ_V: n = rms(k); v = n; k = rope(n * k_w)
//   [heads + kv, heads + 2 kv)    v heads (QKV only): v = rms(v), no weight, no rotation
// Q_ONLY launches the q slots only.
#include "jemma_common.cuh"

#define JEMMA_QKV_Q_ONLY 0
#define JEMMA_QKV_QK_EQ_V 1
#define JEMMA_QKV_QKV 2

// q: [tokens, heads * head_dim] (row stride qs); k, v: [tokens, kv_heads * head_dim] (ks, vs).
// positions: [tokens]; inv_freq: [head_dim / 2] (zeros where a pair does not rotate).
// slots: [tokens] KV-cache rows, or null for no cache write; k_cache, v_cache: [cache rows, kv_heads, head_dim].
extern "C" __global__ void jemma_qkv_norm(int mode, float* q, int64_t qs, float* k, int64_t ks, float* v, int64_t vs,
                                          int heads, int kv_heads, int head_dim,
                                          const float* __restrict__ q_weight, const float* __restrict__ k_weight,
                                          float eps, const int* __restrict__ positions,
                                          const float* __restrict__ inv_freq, const int* __restrict__ slots,
                                          __nv_bfloat16* k_cache, __nv_bfloat16* v_cache) {
    __shared__ float scratch[JEMMA_MAX_WARPS];
    const int64_t token = blockIdx.x;
    const int slot = blockIdx.y;
    const int half = head_dim / 2;
    const int t = threadIdx.x;
    const bool active = t < half;

    float* x;                 // this block's head
    const float* weight;      // null: no weight
    bool rotate;
    float* v_out = nullptr;   // QK_EQ_V: where n goes
    int kv_head = -1;         // >= 0: this head is cached
    bool is_value = false;    // the cached head is a v head (QKV mode's v slots)
    if (slot < heads) {
        x = q + token * qs + (int64_t) slot * head_dim;
        weight = q_weight;
        rotate = true;
    } else if (slot < heads + kv_heads) {
        kv_head = slot - heads;
        x = k + token * ks + (int64_t) kv_head * head_dim;
        weight = k_weight;
        rotate = true;
        if (mode == JEMMA_QKV_QK_EQ_V) {
            v_out = v + token * vs + (int64_t) kv_head * head_dim;
        }
    } else {
        kv_head = slot - heads - kv_heads;
        x = v + token * vs + (int64_t) kv_head * head_dim;
        weight = nullptr;
        rotate = false;
        is_value = true;
    }

    float a = active ? x[t] : 0.0f;
    float b = active ? x[t + half] : 0.0f;
    const float inv = jemma_inverse_rms(jemma_block_sum(a * a + b * b, scratch), head_dim, eps);
    if (!active) {
        return;
    }
    a *= inv;
    b *= inv;
    const float na = a, nb = b;   // the unweighted n: QK_EQ_V's value
    if (v_out != nullptr) {
        v_out[t] = na;
        v_out[t + half] = nb;
    }
    if (weight != nullptr) {
        a *= weight[t];
        b *= weight[t + half];
    }
    if (rotate) {
        // sincosf with full range reduction: positions reach 262144, so the fast __sinf would be wrong.
        const float angle = inv_freq[t] * (float) positions[token];
        float s, c;
        sincosf(angle, &s, &c);
        const float ra = a * c - b * s;
        const float rb = b * c + a * s;
        a = ra;
        b = rb;
    }
    x[t] = a;
    x[t + half] = b;

    if (slots != nullptr && kv_head >= 0) {
        const int64_t row = (int64_t) slots[token] * kv_heads * head_dim + (int64_t) kv_head * head_dim;
        if (is_value) {
            v_cache[row + t] = __float2bfloat16_rn(a);
            v_cache[row + t + half] = __float2bfloat16_rn(b);
        } else {
            k_cache[row + t] = __float2bfloat16_rn(a);
            k_cache[row + t + half] = __float2bfloat16_rn(b);
            if (v_out != nullptr) {
                v_cache[row + t] = __float2bfloat16_rn(na);
                v_cache[row + t + half] = __float2bfloat16_rn(nb);
            }
        }
    }
}
