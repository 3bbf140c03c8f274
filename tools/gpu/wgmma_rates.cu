// wgmma-rates: what the tensor cores sustain with the prefill attention loop's own shapes on an H200 (NOTES.md, prefill
// attention version 6): 132 CTAs of 384 threads, the consumer warpgroups (1 or 2) issuing only wgmma from shared
// memory in a loop, clock64 per iteration. Per warpgroup iteration: S = 16 k-steps of m64nNk16 SS (A = 64 rows x 256
// head-dim columns of Q, B = N keys), P V = N / 16 k-steps of m64n256k16 RS (A = P from registers, B = V MN-major),
// both by the kernels' own wgmma wrappers (attention_prefill_sm90.cu's jfa3::wgmma_ss, wgmma_m64n256_rs);
// "ideal" counts 4096 bf16 FLOP a cycle an SM. Build here, run on the GPU host:
//
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -I src-native-kernels -o target/gpu/wgmma-rates \
//     tools/gpu/wgmma_rates.cu
//   target/gpu/wgmma-rates
#include <cstdint>
#include <cstdio>

#include <cuda_runtime.h>

#include "attention_prefill_sm90.cu"

// MODE 0: S only; 1: P V only; 2: S then P V (one group each), wait all; out[0]: the consumer warpgroups issuing.
template <int N, int MODE, int KS>
__global__ void __launch_bounds__(384, 1) bench(int iters, unsigned long long* out, float* sink) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using namespace jfa3;
    extern __shared__ __align__(1024) unsigned char sm[];
    const uint32_t base = (uint32_t) __cvta_generic_to_shared(sm);
    const uint32_t b0 = (base + 1023) & ~1023u;
    const int wg = threadIdx.x / 128;
    const int active = out[0];   // consumer warpgroups that issue (1 or 2)
    if (wg == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    if (wg > active) return;
    const uint64_t qd = descriptor(b0 + (wg - 1) * 64 * 128, 16, 1024);
    const uint64_t kd = descriptor(b0 + 65536, 16, 1024);
    const uint64_t vd = descriptor(b0 + 65536 + 65536, N * 128, 1024);
    float s[N / 2];
    float o[128];
    #pragma unroll
    for (int i = 0; i < N / 2; i++) s[i] = 0.f;
    #pragma unroll
    for (int i = 0; i < 128; i++) o[i] = 0.f;
    uint32_t pa[4] = {0x3f803f80u, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u};
    __syncwarp();
    unsigned long long t0 = clock64();
    for (int it = 0; it < iters; it++) {
        wgmma_fence();
        if (MODE != 1) {
            #pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                const uint32_t qa = (ks >> 2) * (128 * 128) + (ks & 3) * 32;
                const uint32_t ka = (ks >> 2) * (N * 128) + (ks & 3) * 32;
                wgmma_ss(s, qd + (qa >> 4), kd + (ka >> 4), 1);
            }
            wgmma_commit();
        }
        if (MODE != 0) {
            #pragma unroll
            for (int kk = 0; kk < N / 16; kk++) {
                wgmma_m64n256_rs(o, pa, vd + ((kk * 2048) >> 4), 1);
            }
            wgmma_commit();
        }
        wgmma_wait_all();
        pin(s);
        pin(o);
    }
    unsigned long long t1 = clock64();
    float acc = 0.f;
    #pragma unroll
    for (int i = 0; i < N / 2; i++) acc += s[i];
    #pragma unroll
    for (int i = 0; i < 128; i++) acc += o[i];
    sink[blockIdx.x * 384 + threadIdx.x] = acc;
    if (threadIdx.x == 128 && blockIdx.x == 0) out[1] = t1 - t0;
#endif
}

template <int N, int MODE>
void run(int wgs) {
    const int iters = 2000;
    unsigned long long* d_out; float* sink;
    cudaMalloc(&d_out, 16); cudaMalloc(&sink, 132 * 384 * 4);
    unsigned long long h[2] = {(unsigned long long) wgs, 0};
    cudaMemcpy(d_out, h, 16, cudaMemcpyHostToDevice);
    const int smem = 200 * 1024;
    cudaFuncSetAttribute(bench<N, MODE, 16>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    bench<N, MODE, 16><<<132, 384, smem>>>(iters, d_out, sink);
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    cudaEventRecord(e0);
    bench<N, MODE, 16><<<132, 384, smem>>>(iters, d_out, sink);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms; cudaEventElapsedTime(&ms, e0, e1);
    cudaMemcpy(h, d_out, 16, cudaMemcpyDeviceToHost);
    cudaError_t err = cudaGetLastError();
    double flops_iter = 0;
    if (MODE != 1) flops_iter += 2.0 * 64 * N * 256;
    if (MODE != 0) flops_iter += 2.0 * 64 * N * 256;
    const double tflops = flops_iter * iters * wgs * 132 / (ms * 1e-3) / 1e12;
    const double clk = (double) h[1] / iters;
    // ideal clocks at 4096 flop/clk/SM for all issuing warpgroups
    const double ideal = flops_iter * wgs / 4096.0;
    printf("N=%3d %-6s wgs=%d  %8.1f clk/iter (ideal %6.1f, %4.0f%%)  %6.1f TFLOP/s  %s\n", N,
           MODE == 0 ? "S" : MODE == 1 ? "PV" : "S+PV", wgs, clk, ideal, 100 * ideal / clk, tflops,
           err ? cudaGetErrorString(err) : "");
    cudaFree(d_out); cudaFree(sink);
}

int main() {
    for (int w = 1; w <= 2; w++) {
        // The kernels' key tiles (jfa3::wgmma_ss has their four widths).
        run<32, 0>(w); run<48, 0>(w); run<64, 0>(w); run<80, 0>(w);
        run<32, 1>(w); run<48, 1>(w); run<64, 1>(w); run<80, 1>(w);
        run<32, 2>(w); run<48, 2>(w); run<64, 2>(w); run<80, 2>(w);
    }
    return 0;
}
