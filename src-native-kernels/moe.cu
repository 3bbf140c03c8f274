// Gemma 4's routed experts (the 26B-A4B MoE block), all on the device: no host round trip, so a decode
// step with experts can be captured in a CUDA graph (fixed launch shapes; the data-dependent parts,
// which experts are active and how many rows each has, are read by the kernels from device memory).
//
// Per call (P = tokens * top_k (token, expert) pairs; host: MoeKernels.java):
//   memset counts[E] = 0
//   jemma_moe_route     grid (tokens)      softmax over the router logits (fp32), top k (ties to the lower
//                                          index, as torch.topk), renormalize to sum 1, times
//                                          per_expert_scale[e]; the k picks stored in ascending expert order;
//                                          counts[e] += 1 per pick (integer atomics: the counts are exact)
//   jemma_moe_place     grid (E)           block e: its row range in the expert-sorted order (exclusive
//                                          prefix of the counts), its entry in the GEMV list (1..GEMV_MAX
//                                          rows) or its 64-row tiles in the GEMM list; a stable compaction
//                                          of its pairs (token order) into row_token / pair_row; then gathers
//                                          its tokens' x rows as bf16 (the GEMM operand) into xa [P, hidden]
//   jemma_moe_gemv_gate_up / jemma_moe_gemm_gate_up   act[r] = bf16(gelu_tanh(x_r . g_j) * (x_r . u_j))
//   jemma_moe_gemv_down    / jemma_moe_gemm_down      y[r] = act_r @ down_e^T (fp32)
//   jemma_moe_combine   grid (cols, tokens) out[t] = sum over its k picks, in ascending expert order, of
//                                          weight * y[row of the pick]: a fixed order, no float atomics,
//                                          so results are deterministic run to run.
// The GEMV kernels (a warp per output feature, each weight row read once for all of the expert's rows)
// serve experts with few rows: all of them in decode. The GEMM kernels (bf16 tensor cores through WMMA,
// 64 x 64 tiles, fp32 accumulation) serve experts with more rows than GEMV_MAX (prefill). Both use the
// same operand roundings (x and act in bf16, fp32 accumulation), as the cuBLASLt GEMMs of the dense
// layers do.
#include "jemma_common.cuh"
#include <mma.h>

#define JEMMA_MOE_GEMV_MAX 8        // rows an expert may have for the GEMV kernels (registers per lane)
#define JEMMA_MOE_GEMV_WARPS 8      // output features per GEMV block, one per warp
#define JEMMA_MOE_BM 64             // GEMM tile: rows (tokens of one expert)
#define JEMMA_MOE_BN 64             //            output features
#define JEMMA_MOE_BK 32             //            reduction step
#define JEMMA_MOE_GEMM_THREADS 128  // 4 warps, 2 x 2, each 32 x 32
#define JEMMA_MOE_MAX_TOP_K 32

__device__ __forceinline__ float moe_gelu_tanh(float x) {
    const float k = 0.7978845608028654f;   // sqrt(2 / pi); the formula of activations.cu
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

// (value, index) maximum over the block, ties to the lower index; every thread gets the result.
// blockDim.x a multiple of 32; s_val / s_idx hold JEMMA_MAX_WARPS entries.
__device__ __forceinline__ void moe_block_argmax(float v, int i, float* s_val, int* s_idx, float& best_v, int& best_i) {
    #pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, offset);
        const int oi = __shfl_xor_sync(0xffffffffu, i, offset);
        if (ov > v || (ov == v && oi < i)) {
            v = ov;
            i = oi;
        }
    }
    const int warp = threadIdx.x >> 5;
    __syncthreads();
    if ((threadIdx.x & 31) == 0) {
        s_val[warp] = v;
        s_idx[warp] = i;
    }
    __syncthreads();
    best_v = s_val[0];
    best_i = s_idx[0];
    for (int w = 1; w < (int) (blockDim.x >> 5); w++) {
        if (s_val[w] > best_v || (s_val[w] == best_v && s_idx[w] < best_i)) {
            best_v = s_val[w];
            best_i = s_idx[w];
        }
    }
}

// One block per token, one thread per expert (blockDim = experts rounded up to a warp, experts <= 1024).
// logits: [tokens, experts] (row stride ls); expert_scale: [experts]; topk_expert / topk_weight: [tokens, top_k].
extern "C" __global__ void jemma_moe_route(const float* __restrict__ logits, int64_t ls, int experts, int top_k,
                                           const float* __restrict__ expert_scale, int* __restrict__ topk_expert,
                                           float* __restrict__ topk_weight, int* __restrict__ counts) {
    __shared__ float s_val[JEMMA_MAX_WARPS];
    __shared__ int s_idx[JEMMA_MAX_WARPS];
    __shared__ float scratch[JEMMA_MAX_WARPS];
    const int64_t token = blockIdx.x;
    const int e = threadIdx.x;
    const bool valid = e < experts;
    const float l = valid ? logits[token * ls + e] : -INFINITY;

    float max_v;
    int max_i;
    moe_block_argmax(l, e, s_val, s_idx, max_v, max_i);
    const float p = valid ? expf(l - max_v) : 0.0f;       // softmax numerator
    const float sum = jemma_block_sum(p, scratch);

    // Top k by probability (the numerators order the same way); picked experts drop out with -1.
    __shared__ int chosen[JEMMA_MOE_MAX_TOP_K];
    __shared__ float chosen_p[JEMMA_MOE_MAX_TOP_K];
    float candidate = valid ? p : -1.0f;
    for (int s = 0; s < top_k; s++) {
        float best_v;
        int best_i;
        moe_block_argmax(candidate, e, s_val, s_idx, best_v, best_i);
        if (e == best_i) {
            candidate = -1.0f;
        }
        if (threadIdx.x == 0) {
            chosen[s] = best_i;
            chosen_p[s] = best_v / sum;                    // the softmax probability, as torch computes it
        }
    }
    if (threadIdx.x != 0) {
        return;
    }
    // transformers: top_k_weights /= top_k_weights.sum(); top_k_weights *= per_expert_scale[top_k_index]
    float picked = 0.0f;
    for (int s = 0; s < top_k; s++) {
        picked += chosen_p[s];
    }
    for (int s = 0; s < top_k; s++) {
        chosen_p[s] = chosen_p[s] / picked * expert_scale[chosen[s]];
    }
    // Store in ascending expert order: the combine then adds the experts' outputs in the order the
    // CPU backend and transformers' expert loop do.
    for (int s = 1; s < top_k; s++) {
        const int ce = chosen[s];
        const float cp = chosen_p[s];
        int j = s - 1;
        while (j >= 0 && chosen[j] > ce) {
            chosen[j + 1] = chosen[j];
            chosen_p[j + 1] = chosen_p[j];
            j--;
        }
        chosen[j + 1] = ce;
        chosen_p[j + 1] = cp;
    }
    for (int s = 0; s < top_k; s++) {
        topk_expert[token * top_k + s] = chosen[s];
        topk_weight[token * top_k + s] = chosen_p[s];
        atomicAdd(&counts[chosen[s]], 1);
    }
}

// Sums of three ints over the block (blockDim a multiple of 32); every thread gets them.
__device__ __forceinline__ void moe_block_sum3(int& a, int& b, int& c, int* scratch /* 3 * JEMMA_MAX_WARPS */) {
    #pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        a += __shfl_xor_sync(0xffffffffu, a, offset);
        b += __shfl_xor_sync(0xffffffffu, b, offset);
        c += __shfl_xor_sync(0xffffffffu, c, offset);
    }
    const int warp = threadIdx.x >> 5;
    __syncthreads();
    if ((threadIdx.x & 31) == 0) {
        scratch[warp] = a;
        scratch[JEMMA_MAX_WARPS + warp] = b;
        scratch[2 * JEMMA_MAX_WARPS + warp] = c;
    }
    __syncthreads();
    a = b = c = 0;
    for (int w = 0; w < (int) (blockDim.x >> 5); w++) {
        a += scratch[w];
        b += scratch[JEMMA_MAX_WARPS + w];
        c += scratch[2 * JEMMA_MAX_WARPS + w];
    }
}

__device__ __forceinline__ int moe_tiles(int rows, int gemv_max) {
    return rows > gemv_max ? (rows + JEMMA_MOE_BM - 1) / JEMMA_MOE_BM : 0;
}

// One block per expert (grid E, 256 threads). topk_expert: [pairs]; counts: [E] (from the route kernel).
// Writes offsets[e]; small_list (experts with 1..gemv_max rows, ascending); tile_expert / tile_row0 (the
// 64-row tiles of the experts with more); totals = {small experts, tiles}; row_token[row] (the token of
// each expert-sorted row); pair_row[pair] (the row of each pair); xa [pairs, hidden] bf16 rows.
// x: [tokens, hidden] (row stride xs); vec4: x rows are 16-byte aligned and hidden % 4 == 0.
extern "C" __global__ void jemma_moe_place(const int* __restrict__ topk_expert, int pairs, int top_k, int experts,
                                           const int* __restrict__ counts, int gemv_max, int* __restrict__ offsets,
                                           int* __restrict__ small_list, int* __restrict__ tile_expert,
                                           int* __restrict__ tile_row0, int* __restrict__ totals,
                                           int* __restrict__ row_token, int* __restrict__ pair_row,
                                           const float* __restrict__ x, int64_t xs, int hidden, int vec4,
                                           __nv_bfloat16* __restrict__ xa) {
    __shared__ int scratch[3 * JEMMA_MAX_WARPS];
    __shared__ int warp_counts[JEMMA_MAX_WARPS];
    const int e = blockIdx.x;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;

    // Rows, GEMV slots and GEMM tiles of the experts before e.
    int before_rows = 0, before_small = 0, before_tiles = 0;
    for (int i = threadIdx.x; i < e; i += blockDim.x) {
        const int c = counts[i];
        before_rows += c;
        before_small += (c > 0 && c <= gemv_max) ? 1 : 0;
        before_tiles += moe_tiles(c, gemv_max);
    }
    moe_block_sum3(before_rows, before_small, before_tiles, scratch);
    const int n = counts[e];
    const bool small = n > 0 && n <= gemv_max;
    const int tiles = moe_tiles(n, gemv_max);
    if (threadIdx.x == 0) {
        offsets[e] = before_rows;
        if (small) {
            small_list[before_small] = e;
        }
        if (e == experts - 1) {
            totals[0] = before_small + (small ? 1 : 0);
            totals[1] = before_tiles + tiles;
        }
    }
    for (int j = threadIdx.x; j < tiles; j += blockDim.x) {
        tile_expert[before_tiles + j] = e;
        tile_row0[before_tiles + j] = before_rows + j * JEMMA_MOE_BM;
    }
    if (n == 0) {
        return;
    }

    // Stable compaction of this expert's pairs: chunk by chunk, ballot within warps, prefix over warps.
    int base = before_rows;
    for (int c0 = 0; c0 < pairs; c0 += blockDim.x) {
        const int i = c0 + threadIdx.x;
        const bool mine = i < pairs && topk_expert[i] == e;
        const unsigned ballot = __ballot_sync(0xffffffffu, mine);
        if (lane == 0) {
            warp_counts[warp] = __popc(ballot);
        }
        __syncthreads();
        int prefix = 0, total = 0;
        for (int w = 0; w < warps; w++) {
            prefix += w < warp ? warp_counts[w] : 0;
            total += warp_counts[w];
        }
        if (mine) {
            const int row = base + prefix + __popc(ballot & ((1u << lane) - 1u));
            row_token[row] = i / top_k;
            pair_row[i] = row;
        }
        base += total;
        __syncthreads();                    // warp_counts reused; row_token visible to the gather below
    }

    // Gather: xa[row] = bf16(x[token of row]).
    for (int row = before_rows; row < before_rows + n; row++) {
        const int64_t t = row_token[row];
        const float* src = x + t * xs;
        __nv_bfloat16* dst = xa + (int64_t) row * hidden;
        if (vec4) {
            for (int c = threadIdx.x; c < hidden / 4; c += blockDim.x) {
                const float4 v = reinterpret_cast<const float4*>(src)[c];
                __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y);
                __nv_bfloat162 hi = __floats2bfloat162_rn(v.z, v.w);
                reinterpret_cast<__nv_bfloat162*>(dst)[2 * c] = lo;
                reinterpret_cast<__nv_bfloat162*>(dst)[2 * c + 1] = hi;
            }
        } else {
            for (int c = threadIdx.x; c < hidden; c += blockDim.x) {
                dst[c] = __float2bfloat16_rn(src[c]);
            }
        }
    }
}

// 8 bf16 (one 16-byte load) as floats.
__device__ __forceinline__ void moe_unpack8(const uint4& v, float* f) {
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
    #pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 p = __bfloat1622float2(h[i]);
        f[2 * i] = p.x;
        f[2 * i + 1] = p.y;
    }
}

// Weights are read once per call: a streaming load that does not displace the activations in L1.
__device__ __forceinline__ uint4 moe_load_weight(const uint4* p) {
    return __ldcs(p);
}

__device__ __forceinline__ float moe_warp_sum(float v) {
    #pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    }
    return v;
}

// GEMV for the experts in small_list (each with n <= GEMV_MAX rows): grid (ceil(inter / 8), slots), 256
// threads; warp j of a block computes feature f = blockIdx.x * 8 + j, gate row f and up row inter + f of
// the expert's gate_up [2 * inter, hidden], for all n rows at once (the weights are read once).
// xa: [pairs, hidden] bf16; w: [E, 2 * inter, hidden] bf16; act: [pairs, inter] bf16. hidden % 8 == 0.
extern "C" __global__ void __launch_bounds__(JEMMA_MOE_GEMV_WARPS * 32)
jemma_moe_gemv_gate_up(const __nv_bfloat16* __restrict__ xa, const __nv_bfloat16* __restrict__ w, int hidden,
                       int inter, const int* __restrict__ offsets, const int* __restrict__ counts,
                       const int* __restrict__ small_list, const int* __restrict__ totals,
                       __nv_bfloat16* __restrict__ act) {
    if ((int) blockIdx.y >= totals[0]) {
        return;
    }
    const int e = small_list[blockIdx.y];
    const int row0 = offsets[e];
    const int n = counts[e];
    const int lane = threadIdx.x & 31;
    const int f = blockIdx.x * JEMMA_MOE_GEMV_WARPS + (threadIdx.x >> 5);
    if (f >= inter) {
        return;
    }
    const int chunks = hidden / 8;
    const uint4* g = reinterpret_cast<const uint4*>(w + ((int64_t) e * 2 * inter + f) * hidden);
    const uint4* u = reinterpret_cast<const uint4*>(w + ((int64_t) e * 2 * inter + inter + f) * hidden);
    const uint4* xr = reinterpret_cast<const uint4*>(xa + (int64_t) row0 * hidden);
    float ag[JEMMA_MOE_GEMV_MAX], au[JEMMA_MOE_GEMV_MAX];
    #pragma unroll
    for (int r = 0; r < JEMMA_MOE_GEMV_MAX; r++) {
        ag[r] = 0.0f;
        au[r] = 0.0f;
    }
    #pragma unroll 2
    for (int c = lane; c < chunks; c += 32) {
        float gf[8], uf[8];
        moe_unpack8(moe_load_weight(g + c), gf);
        moe_unpack8(moe_load_weight(u + c), uf);
        #pragma unroll
        for (int r = 0; r < JEMMA_MOE_GEMV_MAX; r++) {
            if (r < n) {
                float xf[8];
                moe_unpack8(xr[(int64_t) r * chunks + c], xf);
                #pragma unroll
                for (int i = 0; i < 8; i++) {
                    ag[r] = fmaf(gf[i], xf[i], ag[r]);
                    au[r] = fmaf(uf[i], xf[i], au[r]);
                }
            }
        }
    }
    #pragma unroll
    for (int r = 0; r < JEMMA_MOE_GEMV_MAX; r++) {
        if (r < n) {
            const float gs = moe_warp_sum(ag[r]);
            const float us = moe_warp_sum(au[r]);
            if (lane == 0) {
                act[(int64_t) (row0 + r) * inter + f] = __float2bfloat16_rn(moe_gelu_tanh(gs) * us);
            }
        }
    }
}

// GEMV down projection for the experts in small_list: grid (ceil(hidden / 8), slots); warp j computes
// output feature h = blockIdx.x * 8 + j from row h of the expert's down [hidden, inter].
// act: [pairs, inter] bf16; w: [E, hidden, inter] bf16; y: [pairs, hidden] fp32. inter % 8 == 0.
extern "C" __global__ void __launch_bounds__(JEMMA_MOE_GEMV_WARPS * 32)
jemma_moe_gemv_down(const __nv_bfloat16* __restrict__ act, const __nv_bfloat16* __restrict__ w, int hidden,
                    int inter, const int* __restrict__ offsets, const int* __restrict__ counts,
                    const int* __restrict__ small_list, const int* __restrict__ totals, float* __restrict__ y) {
    if ((int) blockIdx.y >= totals[0]) {
        return;
    }
    const int e = small_list[blockIdx.y];
    const int row0 = offsets[e];
    const int n = counts[e];
    const int lane = threadIdx.x & 31;
    const int h = blockIdx.x * JEMMA_MOE_GEMV_WARPS + (threadIdx.x >> 5);
    if (h >= hidden) {
        return;
    }
    const int chunks = inter / 8;
    const uint4* wr = reinterpret_cast<const uint4*>(w + ((int64_t) e * hidden + h) * inter);
    const uint4* ar = reinterpret_cast<const uint4*>(act + (int64_t) row0 * inter);
    float acc[JEMMA_MOE_GEMV_MAX];
    #pragma unroll
    for (int r = 0; r < JEMMA_MOE_GEMV_MAX; r++) {
        acc[r] = 0.0f;
    }
    #pragma unroll 2
    for (int c = lane; c < chunks; c += 32) {
        float wf[8];
        moe_unpack8(moe_load_weight(wr + c), wf);
        #pragma unroll
        for (int r = 0; r < JEMMA_MOE_GEMV_MAX; r++) {
            if (r < n) {
                float af[8];
                moe_unpack8(ar[(int64_t) r * chunks + c], af);
                #pragma unroll
                for (int i = 0; i < 8; i++) {
                    acc[r] = fmaf(wf[i], af[i], acc[r]);
                }
            }
        }
    }
    #pragma unroll
    for (int r = 0; r < JEMMA_MOE_GEMV_MAX; r++) {
        if (r < n) {
            const float s = moe_warp_sum(acc[r]);
            if (lane == 0) {
                y[(int64_t) (row0 + r) * hidden + h] = s;
            }
        }
    }
}

// Grouped GEMM over the tiles of the experts with more than GEMV_MAX rows: block (feature tile x, tile y)
// computes rows [tile_row0, min(tile_row0 + 64, end of the expert)) x features [64 x, 64 x + 64) of
// a [rows, kdim] @ w_e[features, kdim]^T with bf16 WMMA fragments (16 x 16 x 16) and fp32 accumulators.
// GATE_UP: two weight tiles, gate rows f and up rows n_out + f of w_e [2 n_out, kdim]; the epilogue
// writes bf16(gelu_tanh(gate) * up) to act [pairs, n_out]. Else w_e [n_out, kdim] and y [pairs, n_out]
// fp32. Rows past the expert's end and features past n_out read zeros and are not stored. kdim % 8 == 0.
template <bool GATE_UP>
__device__ __forceinline__ void moe_gemm(const __nv_bfloat16* __restrict__ a, const __nv_bfloat16* __restrict__ w,
                                         int kdim, int n_out, const int* __restrict__ offsets,
                                         const int* __restrict__ counts, const int* __restrict__ tile_expert,
                                         const int* __restrict__ tile_row0, const int* __restrict__ totals,
                                         __nv_bfloat16* __restrict__ act, float* __restrict__ y) {
    using namespace nvcuda;
    constexpr int NB = GATE_UP ? 2 : 1;
    constexpr int LDS = JEMMA_MOE_BK + 8;              // bf16 row stride in shared memory (80 bytes)
    constexpr int LDC = JEMMA_MOE_BN + 4;              // fp32 row stride of the epilogue tile
    constexpr int LOAD_BYTES = (JEMMA_MOE_BM + NB * JEMMA_MOE_BN) * LDS * 2;
    constexpr int STORE_BYTES = NB * JEMMA_MOE_BM * LDC * 4;
    __shared__ __align__(128) unsigned char smem[LOAD_BYTES > STORE_BYTES ? LOAD_BYTES : STORE_BYTES];
    __nv_bfloat16* as = reinterpret_cast<__nv_bfloat16*>(smem);                 // [BM][LDS]
    __nv_bfloat16* bs = as + JEMMA_MOE_BM * LDS;                                 // [NB][BN][LDS]
    float* cs = reinterpret_cast<float*>(smem);                                  // [NB][BM][LDC]

    const int tile = blockIdx.y;
    if (tile >= totals[1]) {
        return;
    }
    const int n0 = blockIdx.x * JEMMA_MOE_BN;
    const int e = tile_expert[tile];
    const int row0 = tile_row0[tile];
    const int row_end = offsets[e] + counts[e];
    const int warp = threadIdx.x >> 5;
    const int wm = warp >> 1;
    const int wn = warp & 1;
    const int64_t w_rows = (int64_t) NB * n_out;                                 // rows of w_e
    const __nv_bfloat16* we = w + (int64_t) e * w_rows * kdim;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[NB][2][2];
    #pragma unroll
    for (int b = 0; b < NB; b++) {
        #pragma unroll
        for (int i = 0; i < 2; i++) {
            #pragma unroll
            for (int j = 0; j < 2; j++) {
                wmma::fill_fragment(acc[b][i][j], 0.0f);
            }
        }
    }
    constexpr int CHUNKS = JEMMA_MOE_BK / 8;                                     // 16-byte chunks per tile row
    const uint4 zero = make_uint4(0, 0, 0, 0);
    for (int k0 = 0; k0 < kdim; k0 += JEMMA_MOE_BK) {
        for (int idx = threadIdx.x; idx < JEMMA_MOE_BM * CHUNKS; idx += JEMMA_MOE_GEMM_THREADS) {
            const int r = idx / CHUNKS;
            const int k = k0 + (idx % CHUNKS) * 8;
            const int row = row0 + r;
            uint4 v = zero;
            if (row < row_end && k < kdim) {
                v = *reinterpret_cast<const uint4*>(a + (int64_t) row * kdim + k);
            }
            *reinterpret_cast<uint4*>(as + r * LDS + (idx % CHUNKS) * 8) = v;
        }
        #pragma unroll
        for (int b = 0; b < NB; b++) {
            for (int idx = threadIdx.x; idx < JEMMA_MOE_BN * CHUNKS; idx += JEMMA_MOE_GEMM_THREADS) {
                const int nn = idx / CHUNKS;
                const int k = k0 + (idx % CHUNKS) * 8;
                const int f = n0 + nn;
                uint4 v = zero;
                if (f < n_out && k < kdim) {
                    v = *reinterpret_cast<const uint4*>(we + ((int64_t) b * n_out + f) * kdim + k);
                }
                *reinterpret_cast<uint4*>(bs + (b * JEMMA_MOE_BN + nn) * LDS + (idx % CHUNKS) * 8) = v;
            }
        }
        __syncthreads();
        #pragma unroll
        for (int kk = 0; kk < JEMMA_MOE_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
            #pragma unroll
            for (int i = 0; i < 2; i++) {
                wmma::load_matrix_sync(fa[i], as + (wm * 32 + i * 16) * LDS + kk, LDS);
            }
            #pragma unroll
            for (int b = 0; b < NB; b++) {
                #pragma unroll
                for (int j = 0; j < 2; j++) {
                    // B (kdim x features) column-major: feature f's k values are contiguous, as w_e stores them.
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
                    wmma::load_matrix_sync(fb, bs + (b * JEMMA_MOE_BN + wn * 32 + j * 16) * LDS + kk, LDS);
                    #pragma unroll
                    for (int i = 0; i < 2; i++) {
                        wmma::mma_sync(acc[b][i][j], fa[i], fb, acc[b][i][j]);
                    }
                }
            }
        }
        __syncthreads();
    }
    #pragma unroll
    for (int b = 0; b < NB; b++) {
        #pragma unroll
        for (int i = 0; i < 2; i++) {
            #pragma unroll
            for (int j = 0; j < 2; j++) {
                wmma::store_matrix_sync(cs + (b * JEMMA_MOE_BM + wm * 32 + i * 16) * LDC + wn * 32 + j * 16,
                                        acc[b][i][j], LDC, wmma::mem_row_major);
            }
        }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < JEMMA_MOE_BM * JEMMA_MOE_BN; idx += JEMMA_MOE_GEMM_THREADS) {
        const int r = idx / JEMMA_MOE_BN;
        const int c = idx % JEMMA_MOE_BN;
        const int row = row0 + r;
        const int f = n0 + c;
        if (row < row_end && f < n_out) {
            if (GATE_UP) {
                const float g = cs[r * LDC + c];
                const float u = cs[(JEMMA_MOE_BM + r) * LDC + c];
                act[(int64_t) row * n_out + f] = __float2bfloat16_rn(moe_gelu_tanh(g) * u);
            } else {
                y[(int64_t) row * n_out + f] = cs[r * LDC + c];
            }
        }
    }
}

// grid (ceil(inter / 64), tile bound); xa [pairs, hidden]; w [E, 2 inter, hidden]; act [pairs, inter].
extern "C" __global__ void __launch_bounds__(JEMMA_MOE_GEMM_THREADS)
jemma_moe_gemm_gate_up(const __nv_bfloat16* __restrict__ xa, const __nv_bfloat16* __restrict__ w, int hidden,
                       int inter, const int* __restrict__ offsets, const int* __restrict__ counts,
                       const int* __restrict__ tile_expert, const int* __restrict__ tile_row0,
                       const int* __restrict__ totals, __nv_bfloat16* __restrict__ act) {
    moe_gemm<true>(xa, w, hidden, inter, offsets, counts, tile_expert, tile_row0, totals, act, nullptr);
}

// grid (ceil(hidden / 64), tile bound); act [pairs, inter]; w [E, hidden, inter]; y [pairs, hidden].
extern "C" __global__ void __launch_bounds__(JEMMA_MOE_GEMM_THREADS)
jemma_moe_gemm_down(const __nv_bfloat16* __restrict__ act, const __nv_bfloat16* __restrict__ w, int hidden,
                    int inter, const int* __restrict__ offsets, const int* __restrict__ counts,
                    const int* __restrict__ tile_expert, const int* __restrict__ tile_row0,
                    const int* __restrict__ totals, float* __restrict__ y) {
    moe_gemm<false>(act, w, inter, hidden, offsets, counts, tile_expert, tile_row0, totals, nullptr, y);
}

// out[t] = sum_k topk_weight[t, k] * y[pair_row[t, k]], k in the stored (ascending expert) order.
// grid (ceil(hidden / blockDim), tokens); y: [pairs, hidden]; out: [tokens, hidden] (row stride os).
extern "C" __global__ void jemma_moe_combine(const float* __restrict__ y, int hidden,
                                             const float* __restrict__ topk_weight, const int* __restrict__ pair_row,
                                             int top_k, float* __restrict__ out, int64_t os) {
    const int64_t t = blockIdx.y;
    const int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= hidden) {
        return;
    }
    float acc = 0.0f;
    for (int k = 0; k < top_k; k++) {
        const int64_t row = pair_row[t * top_k + k];
        acc += topk_weight[t * top_k + k] * y[row * hidden + h];
    }
    out[t * os + h] = acc;
}
