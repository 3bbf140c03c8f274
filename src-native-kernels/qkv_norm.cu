// The fused Gemma 4 QKV norm: per (token, head) one rms, the weight, and RoPE at the row's position,
// in place, straight after the projections; optionally also the write of the new K and V rows into the
// paged bf16 KV cache, so that attention needs no separate pass over them.
//
// The cache row of a token: slots[token] when slots is given (tests, tools), else through the step's
// attention metadata (attention_meta.cuh, as jemma_paged_kv_write finds it: the block table of the pool
// `sliding` says), so that a captured graph replays with the step's new pages; -1 (no page): not stored.
//
// jemma_qkv_norm_w<passes>_m<mode>_c<cache> are the fast form: one warp per (token, head slot), 4
// consecutive elements of each half per lane and pass (16-byte loads and stores), the rms by warp shuffles
// only, any number of heads per block. jemma_qkv_norm (one block per (token, head slot)) takes every shape
// the fast ones do not.
//
// One block per (token, head slot): grid (tokens, head slots). Thread t owns the RoPE pair
// (t, t + head_dim / 2) of its head, so the rotation needs no exchange between threads. Head slots:
//   [0, heads)                    q heads:   q = rope(rms(q) * q_w)
//   [heads, heads + kv)           k heads:   QKV:     k = rope(rms(k) * k_w)
//                                            QK_EQ_V: n = rms(k); v = n; k = rope(n * k_w)
//   [heads + kv, heads + 2 kv)    v heads (QKV only): v = rms(v), no weight, no rotation
// Q_ONLY launches the q slots only. QK_EQ_V with a null k_cache stores only V (K stored once: attention
// derives K = rope(V * k_w), jemma_key_from_value).
#include "jemma_common.cuh"
#include "attention_meta.cuh"

#define JEMMA_QKV_Q_ONLY 0
#define JEMMA_QKV_QK_EQ_V 1
#define JEMMA_QKV_QKV 2

// The kernels' arguments, one struct passed by value: a launch through JCuda costs about a microsecond of
// host time per argument (each its own Java array, marshalled by JNI), so 22 separate arguments made the one
// fused launch slower from the host than the two or six it replaces. Every 8-byte field first, then the
// 4-byte ones: 144 bytes without padding, as QkvNormKernels writes them (18 little-endian longs).
struct JemmaQkvNormArgs {
    float* q;                          // [tokens, heads * head_dim], row stride qs
    float* k;                          // [tokens, kv_heads * head_dim], row stride ks
    float* v;                          // the same, vs
    int64_t qs, ks, vs;
    const float* q_weight;             // [head_dim]
    const float* k_weight;             // [head_dim] or null
    const int* positions;              // [tokens]
    const float* inv_freq;             // [head_dim / 2] (zeros where a pair does not rotate)
    const int* slots;                  // [tokens] KV-cache rows, or null
    const int* meta;                   // the step's attention metadata, or null
    __nv_bfloat16* k_cache;            // [cache rows, kv_heads, head_dim] or null
    __nv_bfloat16* v_cache;
    int mode, heads, kv_heads, head_dim;
    int head_slots, token0, sliding;   // the warp kernels' first token (grid y counts from it)
    float eps;
};
static_assert(sizeof(JemmaQkvNormArgs) == 144, "QkvNormKernels writes 18 longs");

// The struct's fields as the locals the kernels' bodies use.
#define JEMMA_QKV_UNPACK(a) \
    const int mode = a.mode; float* q = a.q; const int64_t qs = a.qs; float* k = a.k; const int64_t ks = a.ks; \
    float* v = a.v; const int64_t vs = a.vs; const int heads = a.heads; const int kv_heads = a.kv_heads; \
    const int head_dim = a.head_dim; const float* __restrict__ q_weight = a.q_weight; \
    const float* __restrict__ k_weight = a.k_weight; const float eps = a.eps; \
    const int* __restrict__ positions = a.positions; const float* __restrict__ inv_freq = a.inv_freq; \
    const int* __restrict__ slots = a.slots; const int* __restrict__ meta = a.meta; const int sliding = a.sliding; \
    __nv_bfloat16* k_cache = a.k_cache; __nv_bfloat16* v_cache = a.v_cache

// The KV-cache row of a token, or -1 when it is not stored.
__device__ __forceinline__ int64_t jemma_qkv_cache_row(const int* slots, const int* meta, int sliding, int token) {
    if (slots != nullptr) {
        return slots[token];
    }
    const JemmaChunk c = jemma_meta_chunk(meta, jemma_meta_row_chunk(meta, token));
    return jemma_meta_slot(jemma_meta_table(meta, sliding, c.table_row), jemma_meta_page_size(meta),
                           c.start + (token - c.first_row));
}

// What head slot `slot` of a token is (see the layout above): where its row is (x, normalized in place), its
// weight (null: none), whether it rotates, where QK_EQ_V's unweighted value goes (v_out, else null), which
// cached head it is (kv_head, -1: none) and whether that is a v head (QKV mode's v slots).
__device__ __forceinline__ void jemma_qkv_head(int mode, int slot, int64_t token, float* q, int64_t qs, float* k,
                                               int64_t ks, float* v, int64_t vs, int heads, int kv_heads,
                                               int head_dim, const float* q_weight, const float* k_weight,
                                               float*& x, const float*& weight, bool& rotate, float*& v_out,
                                               int& kv_head, bool& is_value) {
    v_out = nullptr;
    kv_head = -1;
    is_value = false;
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
}

// Shapes: JemmaQkvNormArgs. No cache write when both slots and meta are null.
extern "C" __global__ void jemma_qkv_norm(const JemmaQkvNormArgs args) {
    JEMMA_QKV_UNPACK(args);
    __shared__ float scratch[JEMMA_MAX_WARPS];
    const int64_t token = blockIdx.x;
    const int slot = blockIdx.y;
    const int half = head_dim / 2;
    const int t = threadIdx.x;
    const bool active = t < half;

    float* x;
    const float* weight;
    bool rotate;
    float* v_out;
    int kv_head;
    bool is_value;
    jemma_qkv_head(mode, slot, token, q, qs, k, ks, v, vs, heads, kv_heads, head_dim, q_weight, k_weight, x, weight,
                   rotate, v_out, kv_head, is_value);

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
        float s, c;
        jemma_rope_sincos(inv_freq[t], (float) positions[token], &s, &c);
        const float ra = a * c - b * s;
        const float rb = b * c + a * s;
        a = ra;
        b = rb;
    }
    x[t] = a;
    x[t + half] = b;

    if ((slots != nullptr || meta != nullptr) && kv_head >= 0) {
        const int64_t cache_row = jemma_qkv_cache_row(slots, meta, sliding, (int) token);
        if (cache_row < 0) {
            return;
        }
        const int64_t row = cache_row * kv_heads * head_dim + (int64_t) kv_head * head_dim;
        if (is_value) {
            v_cache[row + t] = __float2bfloat16_rn(a);
            v_cache[row + t + half] = __float2bfloat16_rn(b);
        } else {
            if (k_cache != nullptr) {          // null: K stored once (QK_EQ_V; attention derives it from V)
                k_cache[row + t] = __float2bfloat16_rn(a);
                k_cache[row + t + half] = __float2bfloat16_rn(b);
            }
            if (v_out != nullptr) {
                v_cache[row + t] = __float2bfloat16_rn(na);
                v_cache[row + t + half] = __float2bfloat16_rn(nb);
            }
        }
    }
}

// 4 bf16 of a float4, one 8-byte store.
__device__ __forceinline__ void jemma_store_bf16x4(__nv_bfloat16* dst, float4 a) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(a.x, a.y), hi = __floats2bfloat162_rn(a.z, a.w);
    uint2 b;
    b.x = *reinterpret_cast<uint32_t*>(&lo);
    b.y = *reinterpret_cast<uint32_t*>(&hi);
    *reinterpret_cast<uint2*>(dst) = b;
}

// 4 bf16 (one 8-byte load) as a float4.
__device__ __forceinline__ float4 jemma_load_bf16x4(const __nv_bfloat16* src) {
    const uint2 b = *reinterpret_cast<const uint2*>(src);
    const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&b.x));
    const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&b.y));
    return make_float4(lo.x, lo.y, hi.x, hi.y);
}

// The cache row of a token through the step's metadata, in three dependent round trips instead of four: the
// header's offsets (one 48-byte read), then the row's chunk index together with the record of chunk `token`
// (a decode step has a chunk per row, so that guess is usually the row's chunk; it is read again only when
// not), then the block-table entry. Same row as jemma_qkv_cache_row.
__device__ __forceinline__ int64_t jemma_qkv_meta_row(const int* meta, int sliding, int token) {
    const int4* header = reinterpret_cast<const int4*>(meta);
    const int4 h0 = header[0];   // chunks, tokens, page size, table stride
    const int4 h1 = header[1];   // chunk records, row chunk, row position, tree masks
    const int4 h2 = header[2];   // full table, sliding table
    const int4* records = reinterpret_cast<const int4*>(meta + h1.x);
    const int guess = min(token, h0.x - 1);
    const int chunk = meta[h1.y + token];
    int4 c = records[(JEMMA_META_CHUNK_INTS / 4) * guess];   // first row, tokens, start, table row
    if (chunk != guess) {
        c = records[(JEMMA_META_CHUNK_INTS / 4) * chunk];
    }
    const int* table = meta + (sliding ? h2.y : h2.x) + (int64_t) c.w * h0.w;
    return jemma_meta_slot(table, h0.z, c.z + (token - c.x));
}

// Warp per (token, head slot): grid (ceil(head slots / warps), tokens from token0), slot = blockIdx.x * warps +
// warp. Lane l owns columns 4 (l + 32 i) .. + 3 of each half, i < PASSES, and their RoPE partners half away.
// Needs half % 4 == 0, half <= 128 * PASSES, every row start, head and the weight and frequency vectors
// 16-byte aligned (the launcher checks). Same arithmetic as jemma_qkv_norm per element.
//
// At decode sizes the kernel's time is its chain of dependent steps and the instructions it issues, so: one
// kernel per (passes, mode, cache rows: none / slots / metadata), each with only its own paths; every load
// (x, the weights, the frequencies, the position, the cache row's table chain) issued before the reduction;
// the sines and cosines (which need only the frequencies and the position) computed before it too,
// branch-free, so that they interleave with the shuffles; no integer division (the grid is 2-D).
#define JEMMA_QKV_CACHE_NONE 0
#define JEMMA_QKV_CACHE_SLOTS 1
#define JEMMA_QKV_CACHE_META 2
//
// BF16IN: q, k and v come from the projections' bf16 outputs (a prefill: cuBLASLt GEMMs with bf16 D), contiguous
// [tokens, heads * head_dim] at q_in and [tokens, kv_heads * head_dim] at k_in, v_in (8-byte aligned rows), read
// as 4 bf16 per float4; q's result goes to args.q (fp32, attention's input) as before. With a cache write, k's
// and v's fp32 results are not stored: attention then reads the cache, not them (CudaBackend marks them spent).
// BF16Q (with BF16IN): q's result is stored only as bf16, in place over q_in (each lane writes exactly the columns it
// read, after reading them), not to args.q: the sm_90a prefill attention reads bf16 Q (TritonAttention; others widen).
template <int PASSES, int MODE, int CACHE, bool BF16IN = false, bool BF16Q = false>
__device__ __forceinline__ void qkv_norm_warp(const JemmaQkvNormArgs& args, const __nv_bfloat16* q_in = nullptr,
                                              const __nv_bfloat16* k_in = nullptr,
                                              const __nv_bfloat16* v_in = nullptr) {
    const int warps = blockDim.x >> 5;
    const int slot = blockIdx.x * warps + (threadIdx.x >> 5);
    if (slot >= args.head_slots) {
        return;   // whole warps only: no block-wide barrier below
    }
    const int lane = threadIdx.x & 31;
    const int token = args.token0 + blockIdx.y;
    const int head_dim = args.head_dim;
    const int half = head_dim / 2;

    float* x;
    const float* weight;
    bool rotate;
    float* v_out;
    int kv_head;
    bool is_value;
    if (MODE == JEMMA_QKV_Q_ONLY) {
        x = args.q + token * args.qs + (int64_t) slot * head_dim;
        weight = args.q_weight;   // never null in this mode: the load and the multiply need no test
        rotate = true;
        v_out = nullptr;
        kv_head = -1;
        is_value = false;
    } else {
        jemma_qkv_head(MODE, slot, token, args.q, args.qs, args.k, args.ks, args.v, args.vs, args.heads,
                       args.kv_heads, head_dim, args.q_weight, args.k_weight, x, weight, rotate, v_out, kv_head,
                       is_value);
    }

    const __nv_bfloat16* xin = nullptr;
    if (BF16IN) {
        if (slot < args.heads) {
            xin = q_in + (int64_t) token * args.heads * head_dim + (int64_t) slot * head_dim;
        } else {
            xin = (slot < args.heads + args.kv_heads || MODE != JEMMA_QKV_QKV ? k_in : v_in)
                + (int64_t) token * args.kv_heads * head_dim + (int64_t) kv_head * head_dim;
        }
    }
    // K's and V's fp32 results have no reader when the bf16-input pass stores them in the cache.
    const bool q_bf16 = BF16Q && slot < args.heads;
    const bool store_x = (!BF16IN || CACHE == JEMMA_QKV_CACHE_NONE || kv_head < 0) && !q_bf16;

    float4 a[PASSES], b[PASSES], wa[PASSES], wb[PASSES], fr[PASSES];
    #pragma unroll
    for (int p = 0; p < PASSES; p++) {
        const int c = 4 * (lane + 32 * p);
        if (c < half) {
            if (BF16IN) {
                a[p] = jemma_load_bf16x4(xin + c);
                b[p] = jemma_load_bf16x4(xin + c + half);
            } else {
                a[p] = *reinterpret_cast<const float4*>(x + c);
                b[p] = *reinterpret_cast<const float4*>(x + c + half);
            }
            if (MODE == JEMMA_QKV_Q_ONLY || weight != nullptr) {
                wa[p] = *reinterpret_cast<const float4*>(weight + c);
                wb[p] = *reinterpret_cast<const float4*>(weight + c + half);
            }
            fr[p] = *reinterpret_cast<const float4*>(args.inv_freq + c);
        }
    }
    const float pos = (float) args.positions[token];
    int64_t row = -1;
    if (CACHE != JEMMA_QKV_CACHE_NONE && MODE != JEMMA_QKV_Q_ONLY && kv_head >= 0) {
        const int64_t cache_row = CACHE == JEMMA_QKV_CACHE_SLOTS ? (int64_t) args.slots[token]
                                                                 : jemma_qkv_meta_row(args.meta, args.sliding, token);
        row = cache_row < 0 ? -1 : cache_row * args.kv_heads * head_dim + (int64_t) kv_head * head_dim;
    }
    float sn[PASSES][4], cs[PASSES][4];
    #pragma unroll
    for (int p = 0; p < PASSES; p++) {
        const float ff[4] = {fr[p].x, fr[p].y, fr[p].z, fr[p].w};
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            jemma_rope_sincos(ff[j], pos, &sn[p][j], &cs[p][j]);
        }
    }
    float ss = 0.0f;
    #pragma unroll
    for (int p = 0; p < PASSES; p++) {
        const int c = 4 * (lane + 32 * p);
        if (c < half) {
            ss += a[p].x * a[p].x + b[p].x * b[p].x + a[p].y * a[p].y + b[p].y * b[p].y
                + a[p].z * a[p].z + b[p].z * b[p].z + a[p].w * a[p].w + b[p].w * b[p].w;
        }
    }
    #pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        ss += __shfl_xor_sync(0xffffffffu, ss, offset);
    }
    const float inv = jemma_inverse_rms(ss, head_dim, args.eps);
    #pragma unroll
    for (int p = 0; p < PASSES; p++) {
        const int c = 4 * (lane + 32 * p);
        if (c >= half) {
            continue;
        }
        const float ea[4] = {a[p].x * inv, a[p].y * inv, a[p].z * inv, a[p].w * inv};
        const float eb[4] = {b[p].x * inv, b[p].y * inv, b[p].z * inv, b[p].w * inv};
        if (MODE == JEMMA_QKV_QK_EQ_V && v_out != nullptr) {
            if (store_x) {
                *reinterpret_cast<float4*>(v_out + c) = make_float4(ea[0], ea[1], ea[2], ea[3]);
                *reinterpret_cast<float4*>(v_out + c + half) = make_float4(eb[0], eb[1], eb[2], eb[3]);
            }
            if (CACHE != JEMMA_QKV_CACHE_NONE && row >= 0) {
                jemma_store_bf16x4(args.v_cache + row + c, make_float4(ea[0], ea[1], ea[2], ea[3]));
                jemma_store_bf16x4(args.v_cache + row + c + half, make_float4(eb[0], eb[1], eb[2], eb[3]));
            }
        }
        const float wfa[4] = {wa[p].x, wa[p].y, wa[p].z, wa[p].w};
        const float wfb[4] = {wb[p].x, wb[p].y, wb[p].z, wb[p].w};
        float ra[4], rb[4];
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            float xa = ea[j];
            float xb = eb[j];
            if (MODE == JEMMA_QKV_Q_ONLY || weight != nullptr) {
                xa *= wfa[j];
                xb *= wfb[j];
            }
            if (rotate) {
                const float ta = xa * cs[p][j] - xb * sn[p][j];
                const float tb = xb * cs[p][j] + xa * sn[p][j];
                xa = ta;
                xb = tb;
            }
            ra[j] = xa;
            rb[j] = xb;
        }
        const float4 outa = make_float4(ra[0], ra[1], ra[2], ra[3]);
        const float4 outb = make_float4(rb[0], rb[1], rb[2], rb[3]);
        if (store_x) {
            *reinterpret_cast<float4*>(x + c) = outa;
            *reinterpret_cast<float4*>(x + c + half) = outb;
        }
        if (q_bf16) {
            __nv_bfloat16* q_out = const_cast<__nv_bfloat16*>(xin);
            jemma_store_bf16x4(q_out + c, outa);
            jemma_store_bf16x4(q_out + c + half, outb);
        }
        // QK_EQ_V with a null k_cache: K stored once (attention derives K from the V just stored).
        if (CACHE != JEMMA_QKV_CACHE_NONE && row >= 0 && (MODE != JEMMA_QKV_QK_EQ_V || args.k_cache != nullptr)) {
            __nv_bfloat16* cache = is_value ? args.v_cache : args.k_cache;
            jemma_store_bf16x4(cache + row + c, outa);
            jemma_store_bf16x4(cache + row + c + half, outb);
        }
    }
}

// jemma_qkv_norm_w<passes>_m<mode>_c<cache>[_b]: passes 1 (head dim up to 256) or 2 (up to 512); mode as
// JEMMA_QKV_*; cache rows JEMMA_QKV_CACHE_* (Q_ONLY: none only); _b: bf16 inputs (BF16IN); _bq: bf16 inputs and
// q's result only as bf16 over q_in (BF16Q).
#define JEMMA_QKV_NORM_W(P, M, C) \
    extern "C" __global__ void jemma_qkv_norm_w##P##_m##M##_c##C(const JemmaQkvNormArgs args) { \
        qkv_norm_warp<P, M, C>(args); \
    } \
    extern "C" __global__ void jemma_qkv_norm_w##P##_m##M##_c##C##_b(const JemmaQkvNormArgs args, \
            const __nv_bfloat16* q_in, const __nv_bfloat16* k_in, const __nv_bfloat16* v_in) { \
        qkv_norm_warp<P, M, C, true>(args, q_in, k_in, v_in); \
    } \
    extern "C" __global__ void jemma_qkv_norm_w##P##_m##M##_c##C##_bq(const JemmaQkvNormArgs args, \
            const __nv_bfloat16* q_in, const __nv_bfloat16* k_in, const __nv_bfloat16* v_in) { \
        qkv_norm_warp<P, M, C, true, true>(args, q_in, k_in, v_in); \
    }
JEMMA_QKV_NORM_W(1, 0, 0)
JEMMA_QKV_NORM_W(2, 0, 0)
JEMMA_QKV_NORM_W(1, 1, 0)
JEMMA_QKV_NORM_W(1, 1, 1)
JEMMA_QKV_NORM_W(1, 1, 2)
JEMMA_QKV_NORM_W(2, 1, 0)
JEMMA_QKV_NORM_W(2, 1, 1)
JEMMA_QKV_NORM_W(2, 1, 2)
JEMMA_QKV_NORM_W(1, 2, 0)
JEMMA_QKV_NORM_W(1, 2, 1)
JEMMA_QKV_NORM_W(1, 2, 2)
JEMMA_QKV_NORM_W(2, 2, 0)
JEMMA_QKV_NORM_W(2, 2, 1)
JEMMA_QKV_NORM_W(2, 2, 2)
