package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;

/**
 * Device ceilings for benchmarks, timed with CUDA events (median of runs after warm-ups): the copy
 * bandwidth a memory-bound kernel is held against, and cuBLASLt's bf16 GEMM rate a prefill is held
 * against; and the backend's own matmul at decode sizes (GEMV kernel or cuBLASLt).
 */
public final class DeviceBench {
    private DeviceBench() {
    }

    /** A device-to-device copy of {@code bytes}: GB/s counting the bytes read and written. */
    public static double copyGBps(CudaBackend backend, long bytes, int reps) {
        CudaContext c = backend.context();
        c.enter();
        DeviceBuffer a = c.memory().allocate(bytes);
        DeviceBuffer b = c.memory().allocate(bytes);
        c.fill32(a, 0, bytes / 4, 0x3f800000);
        double ms = new EventTimer(backend).medianMillis(() -> Cu.check(
                cuMemcpyDtoDAsync(b.pointer(0), a.pointer(0), bytes, c.stream()), "cuMemcpyDtoDAsync"), 3, reps);
        return 2.0 * bytes / ms / 1e6;
    }

    /**
     * cuBLASLt alone at {@code [tokens, in] x [out, in]^T} with bf16 operands already in place (fp32
     * accumulate and output, the backend's GEMM without its operand conversion): TFLOP/s.
     */
    public static double gemmTflops(CudaBackend backend, int tokens, int out, int in, int reps) {
        CudaContext c = backend.context();
        c.enter();
        DeviceBuffer w = c.memory().allocate((long) out * in * 2);
        DeviceBuffer x = c.memory().allocate((long) tokens * in * 2);
        DeviceBuffer y = c.memory().allocate((long) tokens * out * 4);
        c.fill32(w, 0, (long) out * in / 2, 0x3c003c00);       // bf16 pairs of 0.0078125
        c.fill32(x, 0, (long) tokens * in / 2, 0x3c003c00);
        DeviceBuffer workspace = c.memory().allocate(CublasLt.WORKSPACE_BYTES);
        try (CublasLt lt = new CublasLt()) {
            CublasLt.GemmKey key = new CublasLt.GemmKey(out, tokens, in, in, in, out,
                    Gemm.alignment(w.address(), (long) in * 2), Gemm.alignment(x.address(), (long) in * 2),
                    Gemm.alignment(y.address(), (long) out * 4));
            double ms = new EventTimer(backend).medianMillis(() -> lt.gemm(key, w.address(), x.address(), y.address(),
                    workspace, c.stream().handle()), 3, reps);
            return 2.0 * tokens * out * in / ms / 1e9;
        }
    }

    /**
     * The backend's matmul of fp32 x {@code [tokens, in]} by a bf16 weight {@code [out, in]} (operand
     * conversion included), on the GEMV kernel or on cuBLASLt: median microseconds on the device (a graph
     * of repeats, so host launch overhead does not count, as in a decode graph).
     */
    public static double matmulMicros(CudaBackend backend, int tokens, int out, int in, boolean gemv, int reps) {
        return matmulMicros(backend, tokens, new int[] {out}, in, gemv, reps);
    }

    /** The same for projections of one input done together ({@code outs}: their output widths). */
    public static double matmulMicros(CudaBackend backend, int tokens, int[] outs, int in, boolean gemv, int reps) {
        CudaContext c = backend.context();
        c.enter();
        io.jemma.backend.Weight[] ws = new io.jemma.backend.Weight[outs.length];
        io.jemma.backend.Tensor[] ys = new io.jemma.backend.Tensor[outs.length];
        for (int i = 0; i < outs.length; i++) {
            DeviceBuffer wb = c.memory().allocate((long) outs[i] * in * 2);
            c.fill32(wb, 0, (long) outs[i] * in / 2, 0x3c003c00);
            ws[i] = new CudaWeight("bench", io.jemma.backend.DType.BF16, new long[] {outs[i], in}, wb);
            ys[i] = backend.uninitialized(tokens, outs[i]);
        }
        CudaTensor x = backend.uninitialized(tokens, in);
        c.fill32(x.buffer(), 0, (long) tokens * in, 0x3f800000);
        boolean before = backend.usesGemv();
        backend.useGemv(gemv);
        // Timed as a graph of 8 back-to-back matmuls: launched one by one, a small one waits on the host.
        int repeat = 8;
        backend.matmul(x, ws, ys);                                  // plans and buffers before capture
        try (CudaGraph graph = backend.capture(() -> {
            for (int i = 0; i < repeat; i++) {
                backend.matmul(x, ws, ys);
            }
        })) {
            return new EventTimer(backend).medianMillis(graph::replay, 2, reps) * 1e3 / repeat;
        } finally {
            backend.useGemv(before);
        }
    }

    /**
     * The backend's gated MLP input ({@code gelu_tanh(x @ gate^T) * (x @ up^T)}, gate and up {@code [width, in]})
     * at {@code tokens} rows into a tensor from allocateMatmulInput, as the model runs it, with the fused decode
     * GEMV or without: median microseconds, a graph of 8 repeats.
     */
    public static double gatedMicros(CudaBackend backend, int tokens, int width, int in, boolean fused, int reps) {
        CudaContext c = backend.context();
        c.enter();
        io.jemma.backend.Weight[] ws = new io.jemma.backend.Weight[2];
        for (int i = 0; i < 2; i++) {
            DeviceBuffer wb = c.memory().allocate((long) width * in * 2);
            c.fill32(wb, 0, (long) width * in / 2, 0x3c003c00);
            ws[i] = new CudaWeight("bench", io.jemma.backend.DType.BF16, new long[] {width, in}, wb);
        }
        CudaTensor x = backend.uninitialized(tokens, in);
        c.fill32(x.buffer(), 0, (long) tokens * in, 0x3f800000);
        io.jemma.backend.Tensor out = backend.allocateMatmulInput(tokens, width);
        int repeat = 8;
        boolean before = backend.usesGemvGelu();
        backend.useGemvGelu(fused);
        backend.gatedMlpInput(x, ws[0], ws[1], out);
        try (CudaGraph graph = backend.capture(() -> {
            for (int i = 0; i < repeat; i++) {
                backend.gatedMlpInput(x, ws[0], ws[1], out);
            }
        })) {
            return new EventTimer(backend).medianMillis(graph::replay, 2, reps) * 1e3 / repeat;
        } finally {
            backend.useGemvGelu(before);
        }
    }
}
