// PTX wrappers shared by the attention kernels (attention_general.cu, attention_xqa.cu,
// attention_prefill_sm90.cu). The Hopper kernel keeps its own cp.async wrappers: they carry "memory" clobbers
// that order them against its mbarrier and wgmma code, which the mma.sync kernels do not want.
#pragma once

#include <cuda_bf16.h>
#include <stdint.h>

// The shared-state-space address of a pointer into shared memory.
__device__ __forceinline__ uint32_t jemma_smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, bypassing L1; src_bytes 0 writes zeros (the source is not read).
__device__ __forceinline__ void jemma_cp_async16(uint32_t dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

__device__ __forceinline__ void jemma_cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::);
}

// Two floats as a bf16 pair, lo in the low half (round to nearest even).
__device__ __forceinline__ uint32_t jemma_pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}
