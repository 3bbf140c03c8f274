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
