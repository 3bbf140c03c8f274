package io.jemma.backend.cuda;

/** Launches norms.cu: RMSNorm over rows or column groups, and the fused residual add + RMSNorm. */
final class NormKernels {
    private static final int MAX_THREADS = 512;
    private final CudaContext context;

    NormKernels(CudaContext context) {
        this.context = context;
    }

    /**
     * out = rmsnorm(x) * w per group of {@code groupWidth} columns. x, out: [rows, groups * groupWidth]
     * (out may be x); w: fp32 [groupWidth] or null. One block per (group, row).
     */
    void rmsNorm(CudaTensor x, int groupWidth, CudaWeight w, float eps, CudaTensor out) {
        int groups = x.cols() / groupWidth;
        boolean v4 = Grid.vec4(x.address(), x.rowStride(), groupWidth) && Grid.vec4(out.address(), out.rowStride(), 4)
                && (w == null || (w.address() & 15) == 0);
        int vec = v4 ? 4 : 1;
        int threads = Grid.reductionThreads(groupWidth / vec, MAX_THREADS);
        for (int r0 = 0; r0 < x.rows(); r0 += Grid.MAX_Y) {
            int rows = Math.min(Grid.MAX_Y, x.rows() - r0);
            context.launch(v4 ? "jemma_rms_norm_f4" : "jemma_rms_norm_f1", groups, rows, threads, new KernelArgs()
                    .ptr(x.address() + (long) r0 * x.rowStride() * Float.BYTES).i64(x.rowStride())
                    .ptr(out.address() + (long) r0 * out.rowStride() * Float.BYTES).i64(out.rowStride())
                    .ptr(w == null ? 0 : w.address()).i32(groupWidth).f32(eps));
        }
    }

    /** h += rmsnorm(x) * w. h, x: [rows, width] (distinct); w: fp32 [width]. One block per row. */
    void addRmsNorm(CudaTensor h, CudaTensor x, CudaWeight w, float eps) {
        int width = x.cols();
        boolean v4 = Grid.vec4(x.address(), x.rowStride(), width) && Grid.vec4(h.address(), h.rowStride(), width)
                && (w.address() & 15) == 0;
        int threads = Grid.reductionThreads(width / (v4 ? 4 : 1), MAX_THREADS);
        context.launch(v4 ? "jemma_add_rms_norm_f4" : "jemma_add_rms_norm_f1", x.rows(), 1, threads, new KernelArgs()
                .ptr(h.address()).i64(h.rowStride()).ptr(x.address()).i64(x.rowStride()).ptr(w.address())
                .i32(width).f32(eps));
    }

    /** The fused kernels keep up to this many float4s per thread in registers (norms.cu's MAXI). */
    private static final int REGISTER_VECTORS = 4;
    private static final int MAX_FUSED_THREADS = 1024;

    /**
     * Whether {@link #addRmsNormNext} and {@link #rmsNormBf16} take rows of this width at these addresses:
     * 16-byte aligned rows and vectors, and at most 4 x 4 floats per thread of a 1024-thread block.
     */
    static boolean fusedFits(int width, CudaTensor... tensors) {
        if (width % 4 != 0 || width / 4 > REGISTER_VECTORS * MAX_FUSED_THREADS) {
            return false;
        }
        for (CudaTensor t : tensors) {
            if (t != null && !Grid.vec4(t.address(), t.rowStride(), width)) {
                return false;
            }
        }
        return true;
    }

    /**
     * Threads of a fused row kernel: about 2 float4s each for a few rows (decode: one block per row, so more
     * threads put more loads in flight), up to {@link #REGISTER_VECTORS} each when there are many rows.
     */
    private static int fusedThreads(int vectors, int rows) {
        int perThread = rows <= 8 ? 2 : REGISTER_VECTORS;
        return Grid.reductionThreads(Math.max(Grid.ceilDiv(vectors, perThread),
                Grid.ceilDiv(vectors, REGISTER_VECTORS)), MAX_FUSED_THREADS);
    }

    /**
     * h = (h + rmsnorm(x) * w) * scalar; then, if nextW is not null, out = rmsnorm(h) * nextW (and its bf16
     * copy at {@code outBf16} unless 0; out may be null when outBf16 is not: only the copy is written). h, x,
     * out: [rows, width]; w, nextW: fp32 [width], 16-byte aligned ({@link #fusedFits}). One block per row. x is read
     * from {@code xBf16} (contiguous bf16 [rows, width], width % 4 == 0) instead when that is not 0.
     */
    void addRmsNormNext(CudaTensor h, CudaTensor x, long xBf16, CudaWeight w, float scalar, CudaWeight nextW,
                        CudaTensor out, long outBf16, float eps) {
        int width = x.cols();
        int rows = x.rows();
        int vectors = width / 4;
        // A few rows (decode): the prefetching variant, 2 float4s per thread.
        boolean small = rows <= 8 && vectors <= 2 * MAX_FUSED_THREADS;
        int threads = small ? Grid.reductionThreads(Grid.ceilDiv(vectors, 2), MAX_FUSED_THREADS)
                : fusedThreads(vectors, rows);
        // One JemmaResidualArgs (norms.cu): the pointers and strides, then the 4-byte fields.
        String kernel = (small ? "jemma_add_rms_norm_next_small" : "jemma_add_rms_norm_next")
                + (xBf16 != 0 ? "_xb" : "");
        context.launch(kernel, rows, 1, threads,
                new KernelArgs().words(h.address(), xBf16 != 0 ? xBf16 : x.address(), w.address(),
                        nextW == null ? 0 : nextW.address(), out == null ? 0 : out.address(), outBf16, h.rowStride(),
                        xBf16 != 0 ? width : x.rowStride(),
                        out == null ? 0 : out.rowStride(), KernelArgs.pack(Float.floatToRawIntBits(scalar), width),
                        KernelArgs.pack(Float.floatToRawIntBits(eps), 0)));
    }

    /** out = rmsnorm(x) * w and its bf16 copy ([rows, width] at {@code outBf16}); {@link #fusedFits}. */
    void rmsNormBf16(CudaTensor x, CudaWeight w, CudaTensor out, long outBf16, float eps) {
        int width = x.cols();
        context.launch("jemma_rms_norm_bf16", x.rows(), 1, fusedThreads(width / 4, x.rows()), new KernelArgs()
                .ptr(x.address()).i64(x.rowStride()).ptr(w.address()).ptr(out.address()).i64(out.rowStride())
                .ptr(outBf16).i32(width).f32(eps));
    }
}
