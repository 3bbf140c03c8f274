// Attention over the paged bf16 KV cache, and the store of new K/V rows into it.
//
// Cache layout (as qkv_norm.cu's optional write): [cache row (slot), kv_heads, head_dim] bf16.
//
// jemma_kv_write: one block per token row; threads stride over kv_heads * head_dim.
//
// jemma_attention: one block per (query row, query head): grid (tokens, heads), JEMMA_ATTN_WARPS warps.
// The visible positions of a row are given as a list of cache slots: slots[rows[2 r] ..
// rows[2 r] + rows[2 r + 1]) (the host flattens the page tables: any page size). Each warp streams over
// every JEMMA_ATTN_WARPS-th visible slot: the lanes hold head_dim / 32 elements each of q and of the
// fp32 V accumulator; per key a warp-wide dot product, then the online softmax update (running max and
// sum in fp32). At the end the warps' partial (max, sum, accumulator) are merged through shared memory.
// head_dim up to 512 (16 elements per lane); lanes past head_dim idle (tiny heads: 16, 32, 64).
#include "jemma_common.cuh"

#define JEMMA_ATTN_WARPS 4
#define JEMMA_ATTN_MAX_HEAD_DIM 512
#define JEMMA_ATTN_PER_LANE (JEMMA_ATTN_MAX_HEAD_DIM / 32)

// k, v: [tokens, width] fp32 (row strides ks, vs), width = kv_heads * head_dim; slots: [tokens].
extern "C" __global__ void jemma_kv_write(const float* __restrict__ k, int64_t ks, const float* __restrict__ v,
                                          int64_t vs, int width, const int* __restrict__ slots,
                                          __nv_bfloat16* k_cache, __nv_bfloat16* v_cache) {
    const int64_t token = blockIdx.x;
    const int64_t row = (int64_t) slots[token] * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        k_cache[row + i] = __float2bfloat16_rn(k[token * ks + i]);
        v_cache[row + i] = __float2bfloat16_rn(v[token * vs + i]);
    }
}

// q: [tokens, heads * head_dim] (row stride qs); out: likewise (os); k_cache, v_cache: see above.
// slots: the flattened visible slot lists; rows: [tokens, 2] (first index into slots, count >= 1).
extern "C" __global__ void __launch_bounds__(JEMMA_ATTN_WARPS * 32)
jemma_attention(const float* __restrict__ q, int64_t qs, float* out, int64_t os,
                const __nv_bfloat16* __restrict__ k_cache, const __nv_bfloat16* __restrict__ v_cache,
                int heads, int kv_heads, int head_dim, float scale,
                const int* __restrict__ slots, const int* __restrict__ rows) {
    __shared__ float s_acc[JEMMA_ATTN_WARPS][JEMMA_ATTN_MAX_HEAD_DIM];
    __shared__ float s_max[JEMMA_ATTN_WARPS];
    __shared__ float s_sum[JEMMA_ATTN_WARPS];

    const int64_t token = blockIdx.x;
    const int head = blockIdx.y;
    const int kv_head = head / (heads / kv_heads);
    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const int first = rows[2 * token];
    const int count = rows[2 * token + 1];
    const int64_t kv_width = (int64_t) kv_heads * head_dim;

    float qr[JEMMA_ATTN_PER_LANE];
    float acc[JEMMA_ATTN_PER_LANE];
    const float* qh = q + token * qs + (int64_t) head * head_dim;
    #pragma unroll
    for (int i = 0; i < JEMMA_ATTN_PER_LANE; i++) {
        const int d = i * 32 + lane;
        qr[i] = d < head_dim ? qh[d] * scale : 0.0f;
        acc[i] = 0.0f;
    }

    float m = -INFINITY;
    float l = 0.0f;
    for (int j = warp; j < count; j += JEMMA_ATTN_WARPS) {
        const int64_t base = (int64_t) slots[first + j] * kv_width + (int64_t) kv_head * head_dim;
        const __nv_bfloat16* kr = k_cache + base;
        float s = 0.0f;
        #pragma unroll
        for (int i = 0; i < JEMMA_ATTN_PER_LANE; i++) {
            const int d = i * 32 + lane;
            if (d < head_dim) {
                s += qr[i] * __bfloat162float(kr[d]);
            }
        }
        #pragma unroll
        for (int offset = 16; offset > 0; offset >>= 1) {
            s += __shfl_xor_sync(0xffffffffu, s, offset);
        }
        const float m_new = fmaxf(m, s);
        const float correction = expf(m - m_new);   // m = -inf at the first key: 0
        const float p = expf(s - m_new);
        l = l * correction + p;
        m = m_new;
        const __nv_bfloat16* vr = v_cache + base;
        #pragma unroll
        for (int i = 0; i < JEMMA_ATTN_PER_LANE; i++) {
            const int d = i * 32 + lane;
            if (d < head_dim) {
                acc[i] = acc[i] * correction + p * __bfloat162float(vr[d]);
            }
        }
    }

    // Merge the warps' partial softmaxes.
    if (lane == 0) {
        s_max[warp] = m;
        s_sum[warp] = l;
    }
    #pragma unroll
    for (int i = 0; i < JEMMA_ATTN_PER_LANE; i++) {
        const int d = i * 32 + lane;
        if (d < head_dim) {
            s_acc[warp][d] = acc[i];
        }
    }
    __syncthreads();
    float m_all = -INFINITY;
    for (int w = 0; w < JEMMA_ATTN_WARPS; w++) {
        m_all = fmaxf(m_all, s_max[w]);
    }
    float weight[JEMMA_ATTN_WARPS];
    float total = 0.0f;
    #pragma unroll
    for (int w = 0; w < JEMMA_ATTN_WARPS; w++) {
        weight[w] = s_sum[w] > 0.0f ? expf(s_max[w] - m_all) : 0.0f;   // a warp without keys: 0
        total += weight[w] * s_sum[w];
    }
    const float inv_total = 1.0f / total;
    float* oh = out + token * os + (int64_t) head * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float o = 0.0f;
        #pragma unroll
        for (int w = 0; w < JEMMA_ATTN_WARPS; w++) {
            o += weight[w] * s_acc[w][d];
        }
        oh[d] = o * inv_total;
    }
}
