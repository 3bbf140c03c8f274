// Dummy weights generated on the device (--load-format dummy), bit for bit the formula of
// io.jemma.backend.DummyWeights (and of the torch side-by-side script):
//   h = fmix32(key ^ (uint32)(i * 0x9E3779B9)); u = (h >> 8) * 2^-24; x = (2u - 1) * range
// with key = fmix32(seed ^ fnv1a32(name)) and range = fp32(1 / sqrt(last dim)) computed on the host.
// Every operation is written with an explicit rounding intrinsic so that no contraction changes a bit.
//
// jemma_dummy_bf16: out bf16 [n]; grid-stride over groups of 8 elements, one 16-byte store per group.
// via_f16 = 1: the config stores fp16, so x is rounded to fp16 first, then (as the upload of an fp16
// checkpoint would) to bf16.
#include "jemma_common.cuh"
#include <cuda_fp16.h>

__device__ __forceinline__ uint32_t jemma_fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

__device__ __forceinline__ __nv_bfloat16 jemma_dummy_element(uint32_t key, uint64_t i, float range, int via_f16) {
    const uint32_t h = jemma_fmix32(key ^ ((uint32_t) i * 0x9E3779B9u));
    const float u = __fmul_rn(__uint2float_rn(h >> 8), 5.9604644775390625e-8f);   // 2^-24, exact
    float x = __fmul_rn(__fsub_rn(__fmul_rn(2.0f, u), 1.0f), range);
    if (via_f16) {
        x = __half2float(__float2half_rn(x));
    }
    return __float2bfloat16_rn(x);
}

extern "C" __global__ void jemma_dummy_bf16(uint32_t key, float range, int64_t n, int via_f16, __nv_bfloat16* out) {
    const int64_t groups = (n + 7) / 8;
    for (int64_t g = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; g < groups; g += (int64_t) gridDim.x * blockDim.x) {
        const int64_t first = g * 8;
        if (first + 8 <= n) {
            union {
                uint4 v;
                __nv_bfloat16 e[8];
            } pack;
            #pragma unroll
            for (int j = 0; j < 8; j++) {
                pack.e[j] = jemma_dummy_element(key, (uint64_t) (first + j), range, via_f16);
            }
            *reinterpret_cast<uint4*>(out + first) = pack.v;
        } else {
            for (int64_t i = first; i < n; i++) {
                out[i] = jemma_dummy_element(key, (uint64_t) i, range, via_f16);
            }
        }
    }
}
