// Shared helpers for Jemma's kernels. Every kernel is extern "C" so the Java launchers find it by its
// plain name in the fatbin (cuModuleGetFunction), and takes row strides in elements so that column
// views of wider tensors (the q/k/v slices of a fused projection) work without copies.
//
// Activations are fp32 (the Backend contract: arithmetic in fp32, like the CPU reference); weights are
// bf16 matrices and fp32 vectors (norm weights), converted once at upload.
#pragma once

#include <cuda_bf16.h>
#include <stdint.h>

#define JEMMA_MAX_WARPS 32

// Sum of v over the whole block, returned to every thread. blockDim.x must be a multiple of 32 (the
// launchers round up; threads past the data pass 0). Uses one __syncthreads pair; `scratch` must hold
// JEMMA_MAX_WARPS floats and may be reused after the call returns.
__device__ __forceinline__ float jemma_block_sum(float v, float* scratch) {
    #pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    }
    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const int warps = blockDim.x >> 5;
    __syncthreads();                       // scratch may still be read by a previous call
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    float total = 0.0f;
    // Every warp sums the per-warp partials itself: no second broadcast barrier needed.
    for (int w = 0; w < warps; w++) {
        total += scratch[w];
    }
    return total;
}

// The same sum with one barrier instead of two and a shuffle tree instead of a serial loop over the warps'
// partials: each warp leaves its partial in scratch[warp], one __syncthreads, then every warp sums the
// partials lane-parallel (the same tree in every warp, so every thread gets the same value). The price:
// scratch must not be written again until the block is past a later barrier, so a kernel that sums twice
// gives each call its own JEMMA_MAX_WARPS floats.
__device__ __forceinline__ float jemma_block_sum_once(float v, float* scratch) {
    #pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    }
    const int lane = threadIdx.x & 31;
    if (lane == 0) {
        scratch[threadIdx.x >> 5] = v;
    }
    __syncthreads();
    float total = lane < (blockDim.x >> 5) ? scratch[lane] : 0.0f;
    #pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        total += __shfl_xor_sync(0xffffffffu, total, offset);
    }
    return total;
}

// (mean(x^2) + eps)^-0.5 from a sum of squares, as the CPU reference computes it: the mean in fp32,
// then a correctly rounded sqrt and divide (rsqrtf would be up to 2 ulp off).
__device__ __forceinline__ float jemma_inverse_rms(float sum_squares, int n, float eps) {
    const float mean_square = sum_squares / (float) n;
    return 1.0f / sqrtf(mean_square + eps);
}

// sin and cos of the RoPE angle inv_freq * position, the angle rounded to fp32 first (as transformers and the
// CPU reference compute it; __fmul_rn keeps the compiler from fusing it into the reduction's first FMA). The
// angle reaches 262144 rad, so it is reduced by 2 pi in three FMA steps (Cody-Waite: 2 pi = C1 + C2 + C3, C1
// with 8 significant bits so that angle - k * C1 is exact) to [-pi, pi], where the hardware __sincosf is
// within 2^-21.4 absolute: about 6e-7 off in all against sincosf's 1 ulp, with no branch and no local
// memory (sincosf's slow path for |x| > 105615 uses both and keeps the compiler from interleaving it).
__device__ __forceinline__ void jemma_rope_sincos(float inv_freq, float position, float* s, float* c) {
    const float angle = __fmul_rn(inv_freq, position);
    const float k = rintf(angle * 0.159154943f);              // whole turns
    float r = fmaf(-k, 6.28125f, angle);                       // C1: exact
    r = fmaf(-k, 1.935307169e-3f, r);                          // C2: 2 pi - C1, rounded to fp32
    r = fmaf(-k, 1.025337627e-11f, r);                         // C3: 2 pi - C1 - C2
    __sincosf(r, s, c);
}

// ---- K = V stored once (k_eq_v layers, NOTES.md "K=V stored once") ----
// In a k_eq_v layer the QKV norm stores V = n (the normalized shared projection) and K = rope(n * k_w); with
// K stored once the cache holds only V and attention derives K from it. One call converts one 16-byte chunk of
// a V row (8 bf16, dims d .. d + 7) and its RoPE partner chunk (dims d + half ..), as qkv_norm.cu computes them
// per pair: k_a = a w_a cos - b w_b sin, k_b = b w_b cos + a w_a sin at the key's position, with the same sines
// and cosines (jemma_rope_sincos); a pair whose frequency is 0 (proportional RoPE's non-rotating pairs) is just
// the product, exactly what the rotation by angle 0 gives. Differs from the stored K only by V's bf16 rounding
// before the product. k_w: [head_dim] fp32, inv_freq: [head_dim / 2] fp32, both 16-byte aligned; d % 8 == 0.
__device__ __forceinline__ void jemma_bf16x8_unpack(const uint4 u, float (&x)[8]) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
    #pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[i]));
        x[2 * i] = f.x;
        x[2 * i + 1] = f.y;
    }
}

__device__ __forceinline__ uint32_t jemma_bf16x2_pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ void jemma_key_from_value(uint4& lo, uint4& hi, const float* __restrict__ k_w,
                                                     const float* __restrict__ inv_freq, int d, int half,
                                                     float position) {
    float a[8], b[8], wa[8], wb[8], f[8];
    jemma_bf16x8_unpack(lo, a);
    jemma_bf16x8_unpack(hi, b);
    #pragma unroll
    for (int i = 0; i < 2; i++) {
        const float4 x = __ldg(reinterpret_cast<const float4*>(k_w + d) + i);
        const float4 y = __ldg(reinterpret_cast<const float4*>(k_w + d + half) + i);
        const float4 z = __ldg(reinterpret_cast<const float4*>(inv_freq + d) + i);
        wa[4 * i] = x.x; wa[4 * i + 1] = x.y; wa[4 * i + 2] = x.z; wa[4 * i + 3] = x.w;
        wb[4 * i] = y.x; wb[4 * i + 1] = y.y; wb[4 * i + 2] = y.z; wb[4 * i + 3] = y.w;
        f[4 * i] = z.x; f[4 * i + 1] = z.y; f[4 * i + 2] = z.z; f[4 * i + 3] = z.w;
    }
    float ka[8], kb[8];
    #pragma unroll
    for (int j = 0; j < 8; j++) {
        float xa = a[j] * wa[j];
        float xb = b[j] * wb[j];
        if (f[j] != 0.0f) {
            float s, c;
            jemma_rope_sincos(f[j], position, &s, &c);
            const float ta = xa * c - xb * s;
            const float tb = xb * c + xa * s;
            xa = ta;
            xb = tb;
        }
        ka[j] = xa;
        kb[j] = xb;
    }
    lo = make_uint4(jemma_bf16x2_pack(ka[0], ka[1]), jemma_bf16x2_pack(ka[2], ka[3]), jemma_bf16x2_pack(ka[4], ka[5]),
                    jemma_bf16x2_pack(ka[6], ka[7]));
    hi = make_uint4(jemma_bf16x2_pack(kb[0], kb[1]), jemma_bf16x2_pack(kb[2], kb[3]), jemma_bf16x2_pack(kb[4], kb[5]),
                    jemma_bf16x2_pack(kb[6], kb[7]));
}
