// Decode-size matmul: y[t, n] = sum_k bf16(x[t, k]) * w[n, k] for T <= 4 token rows, fp32 accumulation.
// At one to four tokens a GEMM is a stream over the weight matrix; this reads it once with 16-byte loads
// (8 bf16 per lane, 4 loads in flight per lane) and no fp32 -> bf16 operand pass, since x is rounded to
// bf16 while it is read (the same operand rounding as the cuBLASLt path, so the same numbers up to the
// summation order).
//
// Launch: block 128 threads (4 warps), a warp per output row, grid-stride over rows: grid x = blocks.
// Needs K % 8 == 0, w and x 16-byte aligned, x's row stride a multiple of 4 floats; y any layout.
#include "jemma_common.cuh"

#define JEMMA_GEMV_WARPS 4
#define JEMMA_GEMV_UNROLL 4

__device__ __forceinline__ float jemma_round_bf16(float v) {
    return __bfloat162float(__float2bfloat16_rn(v));
}

template <int T>
__device__ __forceinline__ void jemma_gemv_body(const float* __restrict__ x, int64_t xs,
                                                const __nv_bfloat16* __restrict__ w, int k_dim, int n_dim,
                                                float* __restrict__ y, int64_t ys) {
    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    for (int64_t n = (int64_t) blockIdx.x * JEMMA_GEMV_WARPS + warp; n < n_dim;
         n += (int64_t) gridDim.x * JEMMA_GEMV_WARPS) {
        const __nv_bfloat16* row = w + n * k_dim;
        float acc[T];
        #pragma unroll
        for (int t = 0; t < T; t++) {
            acc[t] = 0.0f;
        }
        for (int k0 = lane * 8; k0 < k_dim; k0 += 32 * 8 * JEMMA_GEMV_UNROLL) {
            uint4 wv[JEMMA_GEMV_UNROLL];
            #pragma unroll
            for (int u = 0; u < JEMMA_GEMV_UNROLL; u++) {
                const int k = k0 + u * 256;
                // Streaming: the weights are read once per step; keep L1 for x.
                wv[u] = k < k_dim ? __ldcs(reinterpret_cast<const uint4*>(row + k)) : make_uint4(0, 0, 0, 0);
            }
            #pragma unroll
            for (int u = 0; u < JEMMA_GEMV_UNROLL; u++) {
                const int k = k0 + u * 256;
                if (k < k_dim) {
                    const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&wv[u]);
                    float wf[8];
                    #pragma unroll
                    for (int j = 0; j < 4; j++) {
                        const float2 f = __bfloat1622float2(pairs[j]);
                        wf[2 * j] = f.x;
                        wf[2 * j + 1] = f.y;
                    }
                    #pragma unroll
                    for (int t = 0; t < T; t++) {
                        const float4 a = __ldg(reinterpret_cast<const float4*>(x + t * xs + k));
                        const float4 b = __ldg(reinterpret_cast<const float4*>(x + t * xs + k + 4));
                        float s = acc[t];
                        s = fmaf(jemma_round_bf16(a.x), wf[0], s);
                        s = fmaf(jemma_round_bf16(a.y), wf[1], s);
                        s = fmaf(jemma_round_bf16(a.z), wf[2], s);
                        s = fmaf(jemma_round_bf16(a.w), wf[3], s);
                        s = fmaf(jemma_round_bf16(b.x), wf[4], s);
                        s = fmaf(jemma_round_bf16(b.y), wf[5], s);
                        s = fmaf(jemma_round_bf16(b.z), wf[6], s);
                        s = fmaf(jemma_round_bf16(b.w), wf[7], s);
                        acc[t] = s;
                    }
                }
            }
        }
        #pragma unroll
        for (int t = 0; t < T; t++) {
            float s = acc[t];
            #pragma unroll
            for (int offset = 16; offset > 0; offset >>= 1) {
                s += __shfl_xor_sync(0xffffffffu, s, offset);
            }
            if (lane == 0) {
                y[t * ys + n] = s;
            }
        }
    }
}

#define JEMMA_GEMV(T)                                                                                             \
    extern "C" __global__ void __launch_bounds__(JEMMA_GEMV_WARPS * 32)                                           \
    jemma_gemv_bf16_##T(const float* x, int64_t xs, const __nv_bfloat16* w, int k_dim, int n_dim, float* y,       \
                        int64_t ys) {                                                                             \
        jemma_gemv_body<T>(x, xs, w, k_dim, n_dim, y, ys);                                                        \
    }

JEMMA_GEMV(1)
JEMMA_GEMV(2)
JEMMA_GEMV(3)
JEMMA_GEMV(4)
