// RMSNorm as Gemma 4 computes it: out = x * (mean(x^2) + eps)^-0.5 * w, in fp32, w used as is
// (no 1 + w), w optional (v norm, router input).
#include "jemma_common.cuh"

// Loads/stores of VEC consecutive floats: VEC = 4 gives 16-byte accesses when the launcher has
// checked that every row start is 16-byte aligned and the width is a multiple of 4.
template <int VEC> struct Vec;
template <> struct Vec<1> {
    using T = float;
    __device__ static float get(const T& v, int) { return v; }
    __device__ static void set(T& v, int, float x) { v = x; }
};
template <> struct Vec<4> {
    using T = float4;
    __device__ static float get(const T& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }
    __device__ static void set(T& v, int i, float x) {
        if (i == 0) v.x = x; else if (i == 1) v.y = x; else if (i == 2) v.z = x; else v.w = x;
    }
};

// One block per (row, group): grid (groups, rows). x, out: [rows, groups * width], row strides xs, os
// (out may be x). w: [width] fp32 or null.
template <int VEC>
__device__ void rms_norm_group(const float* x, int64_t xs, float* out, int64_t os,
                               const float* __restrict__ w, int width, float eps) {
    using V = Vec<VEC>;
    using T = typename V::T;
    __shared__ float scratch[JEMMA_MAX_WARPS];
    const int64_t row = blockIdx.y;
    const int64_t col0 = (int64_t) blockIdx.x * width;
    const T* xr = reinterpret_cast<const T*>(x + row * xs + col0);
    T* orow = reinterpret_cast<T*>(out + row * os + col0);
    const int n = width / VEC;

    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        T v = xr[i];
        #pragma unroll
        for (int j = 0; j < VEC; j++) {
            float e = V::get(v, j);
            ss += e * e;
        }
    }
    const float inv = jemma_inverse_rms(jemma_block_sum_once(ss, scratch), width, eps);
    // Second pass re-reads x (from L1/L2: a row is at most a few tens of KB) so that widths of any
    // size need no register or shared-memory row cache.
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        T v = xr[i];
        T r;
        #pragma unroll
        for (int j = 0; j < VEC; j++) {
            float e = V::get(v, j) * inv;
            V::set(r, j, w != nullptr ? e * w[i * VEC + j] : e);
        }
        orow[i] = r;
    }
}

extern "C" __global__ void jemma_rms_norm_f1(const float* x, int64_t xs, float* out, int64_t os, const float* w,
                                             int width, float eps) {
    rms_norm_group<1>(x, xs, out, os, w, width, eps);
}

extern "C" __global__ void jemma_rms_norm_f4(const float* x, int64_t xs, float* out, int64_t os, const float* w,
                                             int width, float eps) {
    rms_norm_group<4>(x, xs, out, os, w, width, eps);
}

// Fused residual: h += rmsnorm(x) * w, one block per row: grid (rows). h: [rows, width] (row stride hs),
// x: [rows, width] (xs), w: [width]. Saves the normalized intermediate's write and re-read.
template <int VEC>
__device__ void add_rms_norm_row(float* h, int64_t hs, const float* __restrict__ x, int64_t xs,
                                 const float* __restrict__ w, int width, float eps) {
    using V = Vec<VEC>;
    using T = typename V::T;
    __shared__ float scratch[JEMMA_MAX_WARPS];
    const int64_t row = blockIdx.x;
    const T* xr = reinterpret_cast<const T*>(x + row * xs);
    T* hr = reinterpret_cast<T*>(h + row * hs);
    const int n = width / VEC;

    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        T v = xr[i];
        #pragma unroll
        for (int j = 0; j < VEC; j++) {
            float e = V::get(v, j);
            ss += e * e;
        }
    }
    const float inv = jemma_inverse_rms(jemma_block_sum_once(ss, scratch), width, eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        T v = xr[i];
        T acc = hr[i];
        #pragma unroll
        for (int j = 0; j < VEC; j++) {
            V::set(acc, j, V::get(acc, j) + (V::get(v, j) * inv) * w[i * VEC + j]);
        }
        hr[i] = acc;
    }
}

extern "C" __global__ void jemma_add_rms_norm_f1(float* h, int64_t hs, const float* x, int64_t xs, const float* w,
                                                 int width, float eps) {
    add_rms_norm_row<1>(h, hs, x, xs, w, width, eps);
}

extern "C" __global__ void jemma_add_rms_norm_f4(float* h, int64_t hs, const float* x, int64_t xs, const float* w,
                                                 int width, float eps) {
    add_rms_norm_row<4>(h, hs, x, xs, w, width, eps);
}

// The residual step between two blocks of a decoder layer, one block per row: grid (rows).
//   h   = (h + rmsnorm(x) * w) * scalar
//   out = rmsnorm(h) * next_w          (only when next_w is not null: the next block's input norm)
// and, when out_bf16 is not null, out rounded to bf16 too ([rows, width] contiguous: the next GEMM's
// operand, so the GEMM needs no conversion pass). Each thread keeps its MAXI float4s of x and of the new
// h in registers between the passes: h is read once and x once, whatever the width (the launcher checks
// width <= 4 * MAXI * blockDim.x and 16-byte alignment). The arithmetic is that of add_rms_norm_row,
// jemma_scale and rms_norm_group one after the other, so the result matches the unfused sequence.
//
// PREFETCH (a few rows: decode, one block per row, so the time is the chain of memory round trips, not
// bandwidth): h, w and next_w are loaded together with x before the first reduction, one round trip
// instead of three; MAXI is then 2 to keep the four register arrays within a 1024-thread block's budget.
//
// XBF16: x is the bf16 output of the projection GEMM before it (a prefill's o_proj or down_proj, cuBLASLt with
// bf16 D), read as 4 bf16 per float4 (row stride xs in bf16 elements); the arithmetic after the load is the same.
template <int MAXI, bool PREFETCH, bool XBF16 = false>
__device__ void add_rms_norm_next_row(float* h, int64_t hs, const float* __restrict__ x, int64_t xs,
                                      const float* __restrict__ w, float scalar, const float* __restrict__ next_w,
                                      float* out, int64_t os, __nv_bfloat16* out_bf16, int width, float eps) {
    __shared__ float scratch[2][JEMMA_MAX_WARPS];   // one per sum: each takes a single barrier
    const int64_t row = blockIdx.x;
    const float4* xr = reinterpret_cast<const float4*>(x + row * xs);
    float4* hr = reinterpret_cast<float4*>(h + row * hs);
    const float4* w4 = reinterpret_cast<const float4*>(w);
    const float4* n4 = reinterpret_cast<const float4*>(next_w);
    const int n = width / 4;

    float4 v[MAXI];
    float4 hv[PREFETCH ? MAXI : 1], wv[PREFETCH ? MAXI : 1], nv[PREFETCH ? MAXI : 1];
    float ss = 0.0f;
    #pragma unroll
    for (int k = 0; k < MAXI; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < n) {
            if (XBF16) {
                const uint2 b = *reinterpret_cast<const uint2*>(reinterpret_cast<const __nv_bfloat16*>(x) + row * xs
                                                                + 4 * i);
                const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&b.x));
                const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&b.y));
                v[k] = make_float4(lo.x, lo.y, hi.x, hi.y);
            } else {
                v[k] = xr[i];
            }
            if (PREFETCH) {
                hv[k] = hr[i];
                wv[k] = w4[i];
                if (next_w != nullptr) {
                    nv[k] = n4[i];
                }
            }
        }
    }
    #pragma unroll
    for (int k = 0; k < MAXI; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < n) {
            ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
        }
    }
    const float inv = jemma_inverse_rms(jemma_block_sum_once(ss, scratch[0]), width, eps);
    float ss2 = 0.0f;
    #pragma unroll
    for (int k = 0; k < MAXI; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < n) {
            const float4 a = PREFETCH ? hv[PREFETCH ? k : 0] : hr[i];
            const float4 g = PREFETCH ? wv[PREFETCH ? k : 0] : w4[i];
            float4 r;
            r.x = (a.x + (v[k].x * inv) * g.x) * scalar;
            r.y = (a.y + (v[k].y * inv) * g.y) * scalar;
            r.z = (a.z + (v[k].z * inv) * g.z) * scalar;
            r.w = (a.w + (v[k].w * inv) * g.w) * scalar;
            hr[i] = r;
            v[k] = r;
            ss2 += r.x * r.x + r.y * r.y + r.z * r.z + r.w * r.w;
        }
    }
    if (next_w == nullptr) {
        return;
    }
    const float inv2 = jemma_inverse_rms(jemma_block_sum_once(ss2, scratch[1]), width, eps);
    float4* orow = reinterpret_cast<float4*>(out + row * os);
    #pragma unroll
    for (int k = 0; k < MAXI; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < n) {
            const float4 g = PREFETCH ? nv[PREFETCH ? k : 0] : n4[i];
            float4 r;
            r.x = (v[k].x * inv2) * g.x;
            r.y = (v[k].y * inv2) * g.y;
            r.z = (v[k].z * inv2) * g.z;
            r.w = (v[k].w * inv2) * g.w;
            if (out != nullptr) {
                orow[i] = r;
            }
            if (out_bf16 != nullptr) {
                __nv_bfloat162 lo = __floats2bfloat162_rn(r.x, r.y), hi = __floats2bfloat162_rn(r.z, r.w);
                uint2 b;
                b.x = *reinterpret_cast<uint32_t*>(&lo);
                b.y = *reinterpret_cast<uint32_t*>(&hi);
                *reinterpret_cast<uint2*>(out_bf16 + row * width + 4 * i) = b;
            }
        }
    }
}

// The two kernels' arguments as one struct passed by value: a launch through JCuda costs about a microsecond
// of host time per argument (each its own Java array, marshalled by JNI), and this step runs twice a layer.
// Every 8-byte field, then the 4-byte ones: 88 bytes without padding, as NormKernels writes them (11
// little-endian longs). next_w, out and out_bf16 may be null (out null with out_bf16 set: a prefill, whose
// GEMMs read only the bf16 copy).
struct JemmaResidualArgs {
    float* h;
    const float* x;
    const float* w;
    const float* next_w;
    float* out;
    __nv_bfloat16* out_bf16;
    int64_t hs, xs, os;
    float scalar;
    int width;
    float eps;
    int unused;
};
static_assert(sizeof(JemmaResidualArgs) == 88, "NormKernels writes 11 longs");

extern "C" __global__ void jemma_add_rms_norm_next(const JemmaResidualArgs a) {
    add_rms_norm_next_row<4, false>(a.h, a.hs, a.x, a.xs, a.w, a.scalar, a.next_w, a.out, a.os, a.out_bf16, a.width,
                                    a.eps);
}

extern "C" __global__ void jemma_add_rms_norm_next_small(const JemmaResidualArgs a) {
    add_rms_norm_next_row<2, true>(a.h, a.hs, a.x, a.xs, a.w, a.scalar, a.next_w, a.out, a.os, a.out_bf16, a.width,
                                   a.eps);
}

// The same with x bf16 (JemmaResidualArgs.x holds a __nv_bfloat16*, xs in bf16 elements, rows 8-byte aligned).
extern "C" __global__ void jemma_add_rms_norm_next_xb(const JemmaResidualArgs a) {
    add_rms_norm_next_row<4, false, true>(a.h, a.hs, a.x, a.xs, a.w, a.scalar, a.next_w, a.out, a.os, a.out_bf16,
                                          a.width, a.eps);
}

extern "C" __global__ void jemma_add_rms_norm_next_small_xb(const JemmaResidualArgs a) {
    add_rms_norm_next_row<2, true, true>(a.h, a.hs, a.x, a.xs, a.w, a.scalar, a.next_w, a.out, a.os, a.out_bf16,
                                         a.width, a.eps);
}

// rmsnorm(x) * w over whole rows into out and its bf16 copy (contiguous [rows, width]): the first layer's
// input norm when the GEMM after it takes the copy. One block per row; the same register scheme and
// arithmetic as above (rms_norm_group's).
extern "C" __global__ void jemma_rms_norm_bf16(const float* x, int64_t xs, const float* __restrict__ w, float* out,
                                               int64_t os, __nv_bfloat16* out_bf16, int width, float eps) {
    constexpr int MAXI = 4;
    __shared__ float scratch[JEMMA_MAX_WARPS];
    const int64_t row = blockIdx.x;
    const float4* xr = reinterpret_cast<const float4*>(x + row * xs);
    const int n = width / 4;
    float4 v[MAXI];
    float ss = 0.0f;
    #pragma unroll
    for (int k = 0; k < MAXI; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < n) {
            v[k] = xr[i];
            ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
        }
    }
    const float inv = jemma_inverse_rms(jemma_block_sum_once(ss, scratch), width, eps);
    const float4* w4 = reinterpret_cast<const float4*>(w);
    float4* orow = reinterpret_cast<float4*>(out + row * os);
    #pragma unroll
    for (int k = 0; k < MAXI; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < n) {
            const float4 g = w4[i];
            float4 r;
            r.x = (v[k].x * inv) * g.x;
            r.y = (v[k].y * inv) * g.y;
            r.z = (v[k].z * inv) * g.z;
            r.w = (v[k].w * inv) * g.w;
            orow[i] = r;
            __nv_bfloat162 lo = __floats2bfloat162_rn(r.x, r.y), hi = __floats2bfloat162_rn(r.z, r.w);
            uint2 b;
            b.x = *reinterpret_cast<uint32_t*>(&lo);
            b.y = *reinterpret_cast<uint32_t*>(&hi);
            *reinterpret_cast<uint2*>(out_bf16 + row * width + 4 * i) = b;
        }
    }
}
