// Token embedding: out[r, :] = table[ids[r], :] * scale, table bf16 [vocab, width] (the checkpoint's
// embed_tokens / embed_tokens_per_layer), out fp32 [rows, width] with row stride os.
// Grid (ceil(width / (2 * blockDim.x)), min(rows, 65535)); each thread converts two adjacent bf16
// (one 4-byte load) when the width is even, else one.
#include "jemma_common.cuh"

extern "C" __global__ void jemma_embed(const __nv_bfloat16* table, int width, const int* ids, float scale,
                                       float* out, int64_t os, int rows) {
    const int c = 2 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (c >= width) return;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        const __nv_bfloat16* src = table + (int64_t) ids[r] * width;
        float* dst = out + r * os;
        if ((width & 1) == 0) {
            const float2 pair = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(src + c));
            dst[c] = pair.x * scale;
            dst[c + 1] = pair.y * scale;
        } else {
            dst[c] = __bfloat162float(src[c]) * scale;
            if (c + 1 < width) {
                dst[c + 1] = __bfloat162float(src[c + 1]) * scale;
            }
        }
    }
}
