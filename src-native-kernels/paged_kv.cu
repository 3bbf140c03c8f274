// The store of a step's new K/V rows into the paged bf16 KV buffers, through the step's block tables
// (attention_meta.cuh): batch row r of chunk c goes to sequence position c.start + (r - c.first_row).
//
// jemma_paged_kv_write: one block per batch row, threads over kv_heads * head_dim; vec4: 16-byte loads
// of 4 floats and 8-byte stores of 4 bf16 (the launcher checks the alignment of addresses and strides).
// A row without a page (the host checks this before launching) is skipped. k_cache null: the layer stores K once
// (as V; attention derives K), only V is stored.
#include "jemma_common.cuh"
#include "attention_meta.cuh"

// k, v: [tokens, width] fp32 (row strides ks, vs), width = kv_heads * head_dim; meta: the step's metadata;
// sliding: which block table; k_cache, v_cache: [slots, width] bf16.
extern "C" __global__ void jemma_paged_kv_write(const float* __restrict__ k, int64_t ks,
                                                const float* __restrict__ v, int64_t vs, int width,
                                                const int* __restrict__ meta, int sliding, int vec4,
                                                __nv_bfloat16* k_cache, __nv_bfloat16* v_cache) {
    const int row = blockIdx.x;
    const JemmaChunk c = jemma_meta_chunk(meta, jemma_meta_row_chunk(meta, row));
    const int64_t slot = jemma_meta_slot(jemma_meta_table(meta, sliding, c.table_row), jemma_meta_page_size(meta),
                                         c.start + (row - c.first_row));
    if (slot < 0) {
        return;
    }
    const float* kr = k + (int64_t) row * ks;
    const float* vr = v + (int64_t) row * vs;
    __nv_bfloat16* kc = k_cache + slot * width;
    __nv_bfloat16* vc = v_cache + slot * width;
    if (vec4) {
        for (int i = threadIdx.x * 4; i < width; i += blockDim.x * 4) {
            const float4 a = *reinterpret_cast<const float4*>(kr + i);
            const float4 b = *reinterpret_cast<const float4*>(vr + i);
            __nv_bfloat162 a01 = __floats2bfloat162_rn(a.x, a.y), a23 = __floats2bfloat162_rn(a.z, a.w);
            __nv_bfloat162 b01 = __floats2bfloat162_rn(b.x, b.y), b23 = __floats2bfloat162_rn(b.z, b.w);
            uint2 ka, vb;
            ka.x = *reinterpret_cast<uint32_t*>(&a01);
            ka.y = *reinterpret_cast<uint32_t*>(&a23);
            vb.x = *reinterpret_cast<uint32_t*>(&b01);
            vb.y = *reinterpret_cast<uint32_t*>(&b23);
            if (k_cache != nullptr) {
                *reinterpret_cast<uint2*>(kc + i) = ka;
            }
            *reinterpret_cast<uint2*>(vc + i) = vb;
        }
    } else {
        for (int i = threadIdx.x; i < width; i += blockDim.x) {
            if (k_cache != nullptr) {
                kc[i] = __float2bfloat16_rn(kr[i]);
            }
            vc[i] = __float2bfloat16_rn(vr[i]);
        }
    }
}

// jemma_paged_kv_copy: moves cached rows of one layer's K and V buffers, row dst[i] <- row src[i] for
// i = 0..pairs-1 IN ORDER (speculative trees: an accepted path's entries move to lower positions, and a
// later pair may overwrite an earlier pair's source). Each thread owns the same 16-byte columns of every
// row and walks the pairs in order, so no two threads ever touch one element: no race, no barrier.
// src, dst: [pairs] slots; k_cache, v_cache: [slots, width] bf16, width a multiple of 8 (the launcher
// checks), rows 16-byte aligned.
extern "C" __global__ void jemma_paged_kv_copy(const int* __restrict__ src, const int* __restrict__ dst, int pairs,
                                               int width, __nv_bfloat16* k_cache, __nv_bfloat16* v_cache) {
    const int col = (blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (col >= width) {
        return;
    }
    for (int i = 0; i < pairs; i++) {
        const int64_t s = (int64_t) src[i] * width + col;
        const int64_t d = (int64_t) dst[i] * width + col;
        if (s == d) {
            continue;
        }
        if (k_cache != nullptr) {                  // null: K stored once (as V)
            const uint4 a = *reinterpret_cast<const uint4*>(k_cache + s);
            *reinterpret_cast<uint4*>(k_cache + d) = a;
        }
        const uint4 b = *reinterpret_cast<const uint4*>(v_cache + s);
        *reinterpret_cast<uint4*>(v_cache + d) = b;
    }
}

// The unfused baseline of tools/bench/qkv_norm.sh (QkvNormBenchmark): token t's K and V rows, converted to
// bf16, to cache row slots[t] of [rows, width] caches; one block per token. The model writes through
// jemma_qkv_norm (fused) or jemma_paged_kv_write (the step metadata) instead.
extern "C" __global__ void jemma_kv_write_slots(const float* __restrict__ k, int64_t ks, const float* __restrict__ v,
                                                int64_t vs, int width, const int* __restrict__ slots,
                                                __nv_bfloat16* k_cache, __nv_bfloat16* v_cache) {
    const int64_t t = blockIdx.x;
    const int64_t row = (int64_t) slots[t] * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        k_cache[row + i] = __float2bfloat16_rn(k[t * ks + i]);
        v_cache[row + i] = __float2bfloat16_rn(v[t * vs + i]);
    }
}

// K stored once (k_eq_v layers): the keys attention derives from the cached values, materialized (tests compare
// them with the keys the QKV norm stores when K is stored): out row i = K of cache row slots[i] at RoPE position
// positions[i], by jemma_key_from_value as the attention kernels derive it. One block per row, a thread per
// (kv head, 16-byte chunk pair); head_dim % 16 == 0. v_cache: [slots, kv_heads * head_dim] bf16; out: [count,
// kv_heads * head_dim] bf16.
extern "C" __global__ void jemma_paged_keys_from_values(const __nv_bfloat16* __restrict__ v_cache,
                                                        __nv_bfloat16* __restrict__ out, const int* __restrict__ slots,
                                                        const int* __restrict__ positions, int kv_heads, int head_dim,
                                                        const float* __restrict__ k_w,
                                                        const float* __restrict__ inv_freq) {
    const int i = blockIdx.x;
    const int pairs = head_dim / 16;
    const int64_t width = (int64_t) kv_heads * head_dim;
    for (int t = threadIdx.x; t < kv_heads * pairs; t += blockDim.x) {
        const int head = t / pairs;
        const int ch = t % pairs;
        const __nv_bfloat16* v = v_cache + (int64_t) slots[i] * width + (int64_t) head * head_dim;
        uint4 lo = *reinterpret_cast<const uint4*>(v + ch * 8);
        uint4 hi = *reinterpret_cast<const uint4*>(v + ch * 8 + head_dim / 2);
        jemma_key_from_value(lo, hi, k_w, inv_freq, ch * 8, head_dim / 2, (float) positions[i]);
        __nv_bfloat16* k = out + i * width + (int64_t) head * head_dim;
        *reinterpret_cast<uint4*>(k + ch * 8) = lo;
        *reinterpret_cast<uint4*>(k + ch * 8 + head_dim / 2) = hi;
    }
}
