// Decode-size matmuls: y[t, n] = sum_k bf16(x[t, k]) * w[n, k] for T <= 4 token rows, fp32 accumulation,
// for up to three weights that share the input (q, k and v; gate and up) in one launch.
//
// At one to four tokens a matmul is a stream over the weights; what decides its speed is keeping every
// SM busy to the end. One block of W warps handles one output row at a time, the W warps splitting K in
// interleaved 256-element strips (16-byte loads of 8 bf16, up to 8 in flight per lane), then summing
// their partials in shared memory; blocks stride over the rows of all the weights. The launcher picks W
// so that the rows divide evenly over the blocks the GPU runs at once (a last partial wave of rows would
// leave SMs idle: with one warp per row, 21504 rows over 8448 warps wasted 15%). x is rounded to bf16
// as it is read: the same operand rounding as the cuBLASLt path, so the same numbers up to the order of
// the sums.
//
// Launch: block 32 * W threads (W <= 32), grid = concurrent blocks (or fewer when there are fewer rows).
// Needs K % 8 == 0, the weights and x 16-byte aligned, x's row stride a multiple of 4 floats; y any layout.
#include "jemma_common.cuh"

#define JEMMA_GEMV_UNROLL 8

__device__ __forceinline__ float jemma_round_bf16(float v) {
    return __bfloat162float(__float2bfloat16_rn(v));
}

template <int T>
__device__ __forceinline__ void jemma_gemv_body(const float* __restrict__ x, int64_t xs, int k_dim,
                                                const __nv_bfloat16* w0, float* y0, int64_t ys0, int n0,
                                                const __nv_bfloat16* w1, float* y1, int64_t ys1, int n1,
                                                const __nv_bfloat16* w2, float* y2, int64_t ys2, int n2) {
    __shared__ float partial[2][32][T];
    const int warps = blockDim.x >> 5;
    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const int chunks = k_dim >> 3;                 // 8-element chunks per row
    const int total = n0 + n1 + n2;
    int parity = 0;
    for (int r = blockIdx.x; r < total; r += gridDim.x, parity ^= 1) {
        const __nv_bfloat16* w;
        float* y;
        int64_t ys;
        int n;
        if (r < n0) {
            w = w0; y = y0; ys = ys0; n = r;
        } else if (r < n0 + n1) {
            w = w1; y = y1; ys = ys1; n = r - n0;
        } else {
            w = w2; y = y2; ys = ys2; n = r - n0 - n1;
        }
        const uint4* row = reinterpret_cast<const uint4*>(w + (int64_t) n * k_dim);
        float acc[T];
        #pragma unroll
        for (int t = 0; t < T; t++) {
            acc[t] = 0.0f;
        }
        const int stride = warps * 32;
        for (int c0 = warp * 32 + lane; c0 < chunks; c0 += stride * JEMMA_GEMV_UNROLL) {
            uint4 wv[JEMMA_GEMV_UNROLL];
            #pragma unroll
            for (int u = 0; u < JEMMA_GEMV_UNROLL; u++) {
                const int c = c0 + u * stride;
                // Streaming: the weights are read once per step; L1 is for x.
                wv[u] = c < chunks ? __ldcs(row + c) : make_uint4(0, 0, 0, 0);
            }
            #pragma unroll
            for (int u = 0; u < JEMMA_GEMV_UNROLL; u++) {
                const int c = c0 + u * stride;
                if (c < chunks) {
                    const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&wv[u]);
                    float wf[8];
                    #pragma unroll
                    for (int j = 0; j < 4; j++) {
                        const float2 f = __bfloat1622float2(pairs[j]);
                        wf[2 * j] = f.x;
                        wf[2 * j + 1] = f.y;
                    }
                    const int k = c * 8;
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
                partial[parity][warp][t] = s;
            }
        }
        // Double-buffered partials: the next row writes the other buffer, and the one after that only
        // after passing the next barrier, which the readers below reach after reading.
        __syncthreads();
        if (threadIdx.x < T) {
            float s = 0.0f;
            for (int v = 0; v < warps; v++) {
                s += partial[parity][v][threadIdx.x];
            }
            y[threadIdx.x * ys + n] = s;
        }
    }
}

#define JEMMA_GEMV(T)                                                                                             \
    extern "C" __global__ void __launch_bounds__(1024)                                                            \
    jemma_gemv_bf16_##T(const float* x, int64_t xs, int k_dim,                                                    \
                        const __nv_bfloat16* w0, float* y0, int64_t ys0, int n0,                                  \
                        const __nv_bfloat16* w1, float* y1, int64_t ys1, int n1,                                  \
                        const __nv_bfloat16* w2, float* y2, int64_t ys2, int n2) {                                \
        jemma_gemv_body<T>(x, xs, k_dim, w0, y0, ys0, n0, w1, y1, ys1, n1, w2, y2, ys2, n2);                      \
    }

JEMMA_GEMV(1)
JEMMA_GEMV(2)
JEMMA_GEMV(3)
JEMMA_GEMV(4)

// The gated MLP's input at decode sizes: y[t, n] = gelu_tanh(sum_k x[t, k] * wg[n, k]) * sum_k x[t, k] * wu[n, k],
// x rounded to bf16 as read (as jemma_gemv_bf16_T). One block per n at a time: each lane takes 8-element chunks
// of the gate row and the same chunks of the up row (one read of x for both), keeping two sums, so the block has
// both dot products at the end and writes the activation itself: no gate and up outputs, no separate gelu
// launch. y (fp32, row stride ys) and y_bf16 ([T, n_rows] contiguous, the down projection's GEMM operand) are
// each written unless null. Launch as jemma_gemv_bf16_T (grid = concurrent blocks or fewer).
// First version (measured, H200): the block walked gate and up as one row of 2 K (a select per chunk): 136 us
// at 8 warps, 125 us at 4, against 114.5 + 2.1 us for the GEMV over both weights and the gelu launch.
__device__ __forceinline__ float jemma_gemv_gelu_tanh(float x) {
    const float k = 0.7978845608028654f;   // sqrt(2 / pi); as activations.cu's jemma_gelu_tanh
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

#define JEMMA_GEMV_GELU_UNROLL 4

template <int T>
__device__ __forceinline__ void jemma_gemv_gelu_body(const float* __restrict__ x, int64_t xs, int k_dim,
                                                     const __nv_bfloat16* wg, const __nv_bfloat16* wu,
                                                     float* y, int64_t ys, __nv_bfloat16* y_bf16, int n_rows) {
    __shared__ float partial[2][32][2 * T];
    const int warps = blockDim.x >> 5;
    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const int chunks = k_dim >> 3;                 // 8-element chunks per weight row
    int parity = 0;
    for (int n = blockIdx.x; n < n_rows; n += gridDim.x, parity ^= 1) {
        const uint4* gate = reinterpret_cast<const uint4*>(wg + (int64_t) n * k_dim);
        const uint4* up = reinterpret_cast<const uint4*>(wu + (int64_t) n * k_dim);
        float acc_g[T], acc_u[T];
        #pragma unroll
        for (int t = 0; t < T; t++) {
            acc_g[t] = 0.0f;
            acc_u[t] = 0.0f;
        }
        const int stride = warps * 32;
        for (int c0 = warp * 32 + lane; c0 < chunks; c0 += stride * JEMMA_GEMV_GELU_UNROLL) {
            uint4 gv[JEMMA_GEMV_GELU_UNROLL], uv[JEMMA_GEMV_GELU_UNROLL];
            #pragma unroll
            for (int u = 0; u < JEMMA_GEMV_GELU_UNROLL; u++) {
                const int c = c0 + u * stride;
                gv[u] = c < chunks ? __ldcs(gate + c) : make_uint4(0, 0, 0, 0);
                uv[u] = c < chunks ? __ldcs(up + c) : make_uint4(0, 0, 0, 0);
            }
            #pragma unroll
            for (int u = 0; u < JEMMA_GEMV_GELU_UNROLL; u++) {
                const int c = c0 + u * stride;
                if (c < chunks) {
                    const __nv_bfloat162* gp = reinterpret_cast<const __nv_bfloat162*>(&gv[u]);
                    const __nv_bfloat162* upp = reinterpret_cast<const __nv_bfloat162*>(&uv[u]);
                    float gf[8], uf[8];
                    #pragma unroll
                    for (int j = 0; j < 4; j++) {
                        const float2 a = __bfloat1622float2(gp[j]);
                        const float2 b = __bfloat1622float2(upp[j]);
                        gf[2 * j] = a.x;
                        gf[2 * j + 1] = a.y;
                        uf[2 * j] = b.x;
                        uf[2 * j + 1] = b.y;
                    }
                    const int k = c * 8;
                    #pragma unroll
                    for (int t = 0; t < T; t++) {
                        const float4 a = __ldg(reinterpret_cast<const float4*>(x + t * xs + k));
                        const float4 b = __ldg(reinterpret_cast<const float4*>(x + t * xs + k + 4));
                        const float xv[8] = {jemma_round_bf16(a.x), jemma_round_bf16(a.y), jemma_round_bf16(a.z),
                                             jemma_round_bf16(a.w), jemma_round_bf16(b.x), jemma_round_bf16(b.y),
                                             jemma_round_bf16(b.z), jemma_round_bf16(b.w)};
                        float sg = acc_g[t];
                        float su = acc_u[t];
                        #pragma unroll
                        for (int j = 0; j < 8; j++) {
                            sg = fmaf(xv[j], gf[j], sg);
                            su = fmaf(xv[j], uf[j], su);
                        }
                        acc_g[t] = sg;
                        acc_u[t] = su;
                    }
                }
            }
        }
        #pragma unroll
        for (int t = 0; t < T; t++) {
            float g = acc_g[t];
            float u = acc_u[t];
            #pragma unroll
            for (int offset = 16; offset > 0; offset >>= 1) {
                g += __shfl_xor_sync(0xffffffffu, g, offset);
                u += __shfl_xor_sync(0xffffffffu, u, offset);
            }
            if (lane == 0) {
                partial[parity][warp][2 * t] = g;
                partial[parity][warp][2 * t + 1] = u;
            }
        }
        // Double-buffered partials, as in jemma_gemv_body.
        __syncthreads();
        if (threadIdx.x < T) {
            float g = 0.0f;
            float u = 0.0f;
            for (int v = 0; v < warps; v++) {
                g += partial[parity][v][2 * threadIdx.x];
                u += partial[parity][v][2 * threadIdx.x + 1];
            }
            const float o = jemma_gemv_gelu_tanh(g) * u;
            if (y != nullptr) {
                y[threadIdx.x * ys + n] = o;
            }
            if (y_bf16 != nullptr) {
                y_bf16[(int64_t) threadIdx.x * n_rows + n] = __float2bfloat16_rn(o);
            }
        }
    }
}

#define JEMMA_GEMV_GELU(T)                                                                                        \
    extern "C" __global__ void __launch_bounds__(1024)                                                            \
    jemma_gemv_gelu_bf16_##T(const float* x, int64_t xs, int k_dim, const __nv_bfloat16* wg,                      \
                             const __nv_bfloat16* wu, float* y, int64_t ys, __nv_bfloat16* y_bf16, int n_rows) {  \
        jemma_gemv_gelu_body<T>(x, xs, k_dim, wg, wu, y, ys, y_bf16, n_rows);                                     \
    }

JEMMA_GEMV_GELU(1)
JEMMA_GEMV_GELU(2)
JEMMA_GEMV_GELU(3)
JEMMA_GEMV_GELU(4)
