// Elementwise and row-copy kernels over fp32 activations [rows, cols] with row strides (column views).
// Launch shape for all of them: grid (ceil(cols / blockDim.x), min(rows, 65535)); the y dimension
// strides over rows so that any row count works.
#include "jemma_common.cuh"

#define JEMMA_ROWS_LOOP for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)

// gelu with the tanh approximation (PyTorch gelu(approximate="tanh"), Gemma's hidden_activation).
__device__ __forceinline__ float jemma_gelu_tanh(float x) {
    const float k = 0.7978845608028654f;   // sqrt(2 / pi)
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

// out = gelu_tanh(gate) * up; out may alias gate or up (each element is read before it is written).
extern "C" __global__ void jemma_gelu_tanh_mul(const float* gate, int64_t gs, const float* up, int64_t us,
                                               float* out, int64_t os, int rows, int cols) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    JEMMA_ROWS_LOOP {
        out[r * os + c] = jemma_gelu_tanh(gate[r * gs + c]) * up[r * us + c];
    }
}

// x = cap * tanh(x / cap): Gemma's final logit soft cap.
extern "C" __global__ void jemma_softcap(float* x, int64_t xs, int rows, int cols, float cap) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    JEMMA_ROWS_LOOP {
        float* p = x + r * xs + c;
        *p = cap * tanhf(*p / cap);
    }
}

// y *= s
extern "C" __global__ void jemma_scale(float* y, int64_t ys, int rows, int cols, float s) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    JEMMA_ROWS_LOOP {
        y[r * ys + c] *= s;
    }
}

// y += x
extern "C" __global__ void jemma_add(float* y, int64_t ys, const float* x, int64_t xs, int rows, int cols) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    JEMMA_ROWS_LOOP {
        y[r * ys + c] += x[r * xs + c];
    }
}

// dst[r] = src[index ? index[r] : r]: copy (index null) and gatherRows.
extern "C" __global__ void jemma_copy_rows(const float* src, int64_t ss, float* dst, int64_t ds,
                                           const int* index, int rows, int cols) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    JEMMA_ROWS_LOOP {
        const int64_t from = index != nullptr ? index[r] : r;
        dst[r * ds + c] = src[from * ss + c];
    }
}

// dst = bf16(src), dst contiguous [rows, cols]: the A operand of a cuBLASLt GEMM (bf16 x bf16 -> fp32),
// rounded to nearest even like PyTorch's .to(bfloat16).
extern "C" __global__ void jemma_to_bf16(const float* src, int64_t ss, __nv_bfloat16* dst, int rows, int cols) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    JEMMA_ROWS_LOOP {
        dst[r * cols + c] = __float2bfloat16_rn(src[r * ss + c]);
    }
}

// dst = float(src), src contiguous bf16 [rows, cols]: a projection's bf16-only output (a prefill's GEMM with
// bf16 D) for an op that reads fp32 (the fallback of shapes the bf16-input kernels do not take).
extern "C" __global__ void jemma_from_bf16(const __nv_bfloat16* src, float* dst, int64_t ds, int rows, int cols) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    JEMMA_ROWS_LOOP {
        dst[r * ds + c] = __bfloat162float(src[r * cols + c]);
    }
}

// out = gelu_tanh(gate) * up, 4 columns per thread (16-byte accesses: the launcher checks the alignment of
// every row start and cols % 4 == 0), and when out_bf16 is not null the same values rounded to bf16
// ([rows, cols] contiguous): the down projection's GEMM operand, so the GEMM needs no conversion pass.
// Grid (ceil(cols / 4 / blockDim.x), min(rows, 65535)). out may alias gate or up.
extern "C" __global__ void jemma_gelu_tanh_mul_f4(const float* gate, int64_t gs, const float* up, int64_t us,
                                                  float* out, int64_t os, __nv_bfloat16* out_bf16, int rows,
                                                  int cols) {
    const int c = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (c >= cols) return;
    JEMMA_ROWS_LOOP {
        const float4 g = *reinterpret_cast<const float4*>(gate + r * gs + c);
        const float4 u = *reinterpret_cast<const float4*>(up + r * us + c);
        float4 o;
        o.x = jemma_gelu_tanh(g.x) * u.x;
        o.y = jemma_gelu_tanh(g.y) * u.y;
        o.z = jemma_gelu_tanh(g.z) * u.z;
        o.w = jemma_gelu_tanh(g.w) * u.w;
        *reinterpret_cast<float4*>(out + r * os + c) = o;
        if (out_bf16 != nullptr) {
            __nv_bfloat162 lo = __floats2bfloat162_rn(o.x, o.y), hi = __floats2bfloat162_rn(o.z, o.w);
            uint2 b;
            b.x = *reinterpret_cast<uint32_t*>(&lo);
            b.y = *reinterpret_cast<uint32_t*>(&hi);
            *reinterpret_cast<uint2*>(out_bf16 + r * cols + c) = b;
        }
    }
}

// jemma_to_bf16 with 4 columns per thread (16-byte loads, 8-byte stores; the launcher checks alignment and
// cols % 4 == 0). Grid (ceil(cols / 4 / blockDim.x), min(rows, 65535)).
extern "C" __global__ void jemma_to_bf16_f4(const float* src, int64_t ss, __nv_bfloat16* dst, int rows, int cols) {
    const int c = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (c >= cols) return;
    JEMMA_ROWS_LOOP {
        const float4 a = *reinterpret_cast<const float4*>(src + r * ss + c);
        __nv_bfloat162 lo = __floats2bfloat162_rn(a.x, a.y), hi = __floats2bfloat162_rn(a.z, a.w);
        uint2 b;
        b.x = *reinterpret_cast<uint32_t*>(&lo);
        b.y = *reinterpret_cast<uint32_t*>(&hi);
        *reinterpret_cast<uint2*>(dst + r * cols + c) = b;
    }
}

// The gated MLP's activation from bf16 projections (the prefill's gate and up GEMMs write bf16, as
// transformers' bf16 activations are): out_bf16 = bf16(gelu_tanh(gate) * up), computed in fp32 from the bf16
// inputs and rounded once. All three [rows, cols] contiguous bf16, cols % 8 == 0, 16-byte aligned: 8 columns
// per thread, 16-byte loads and stores. Only the down projection's GEMM operand is written (its fp32 twin
// would have no reader). Grid (ceil(cols / 8 / blockDim.x), min(rows, 65535)).
extern "C" __global__ void jemma_gelu_tanh_mul_bf16(const __nv_bfloat16* gate, const __nv_bfloat16* up,
                                                    __nv_bfloat16* out_bf16, int rows, int cols) {
    const int c = 8 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (c >= cols) return;
    JEMMA_ROWS_LOOP {
        const int64_t at = r * cols + c;
        const uint4 g = *reinterpret_cast<const uint4*>(gate + at);
        const uint4 u = *reinterpret_cast<const uint4*>(up + at);
        const __nv_bfloat162* gp = reinterpret_cast<const __nv_bfloat162*>(&g);
        const __nv_bfloat162* up2 = reinterpret_cast<const __nv_bfloat162*>(&u);
        uint4 o;
        uint32_t* op = reinterpret_cast<uint32_t*>(&o);
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            const float2 gf = __bfloat1622float2(gp[j]);
            const float2 uf = __bfloat1622float2(up2[j]);
            __nv_bfloat162 p = __floats2bfloat162_rn(jemma_gelu_tanh(gf.x) * uf.x, jemma_gelu_tanh(gf.y) * uf.y);
            op[j] = *reinterpret_cast<uint32_t*>(&p);
        }
        *reinterpret_cast<uint4*>(out_bf16 + at) = o;
    }
}
