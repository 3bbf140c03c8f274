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
    const float inv = jemma_inverse_rms(jemma_block_sum(ss, scratch), width, eps);
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
    const float inv = jemma_inverse_rms(jemma_block_sum(ss, scratch), width, eps);
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
