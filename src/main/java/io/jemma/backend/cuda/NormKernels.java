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
}
