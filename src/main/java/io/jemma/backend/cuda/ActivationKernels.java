package io.jemma.backend.cuda;

/**
 * Launches activations.cu: gelu_tanh(gate) * up, softcap, scale, add, row copies and gathers, and the
 * fp32 -> bf16 conversion of a GEMM's activation operand. All take [rows, cols] with row strides;
 * grid (column blocks, up to 65535 row blocks striding over the rows).
 */
final class ActivationKernels {
    private static final int THREADS = 256;
    private final CudaContext context;

    ActivationKernels(CudaContext context) {
        this.context = context;
    }

    private void launch(String kernel, int rows, int cols, KernelArgs args) {
        context.launch(kernel, Grid.ceilDiv(cols, THREADS), Math.min(rows, Grid.MAX_Y), THREADS, args);
    }

    /** out = gelu_tanh(gate) * up; out may alias gate or up. */
    void geluTanhMul(CudaTensor gate, CudaTensor up, CudaTensor out) {
        geluTanhMul(gate, up, out, 0);
    }

    /**
     * The same, also writing the products rounded to bf16 at {@code outBf16} ([rows, cols] contiguous) unless
     * 0; returns whether it did (only the 16-byte path writes the copy).
     */
    boolean geluTanhMul(CudaTensor gate, CudaTensor up, CudaTensor out, long outBf16) {
        int cols = gate.cols();
        if (Grid.vec4(gate.address(), gate.rowStride(), cols) && Grid.vec4(up.address(), up.rowStride(), cols)
                && Grid.vec4(out.address(), out.rowStride(), cols)) {
            context.launch("jemma_gelu_tanh_mul_f4", Grid.ceilDiv(cols / 4, THREADS), Math.min(gate.rows(), Grid.MAX_Y),
                    THREADS, new KernelArgs()
                            .ptr(gate.address()).i64(gate.rowStride()).ptr(up.address()).i64(up.rowStride())
                            .ptr(out.address()).i64(out.rowStride()).ptr(outBf16).i32(gate.rows()).i32(cols));
            return outBf16 != 0;
        }
        launch("jemma_gelu_tanh_mul", gate.rows(), gate.cols(), new KernelArgs()
                .ptr(gate.address()).i64(gate.rowStride()).ptr(up.address()).i64(up.rowStride())
                .ptr(out.address()).i64(out.rowStride()).i32(gate.rows()).i32(gate.cols()));
        return false;
    }

    /**
     * {@code out = bf16(gelu_tanh(gate) * up)} over bf16 {@code [rows, cols]} contiguous tensors at device
     * addresses (16-byte aligned, cols % 8 == 0): the prefill's gated MLP activation from bf16 GEMM outputs.
     */
    void geluTanhMulBf16(long gate, long up, long out, int rows, int cols) {
        if (cols % 8 != 0 || ((gate | up | out) & 15) != 0) {
            throw new IllegalArgumentException("bf16 gelu needs cols % 8 == 0 and 16-byte alignment: " + cols);
        }
        context.launch("jemma_gelu_tanh_mul_bf16", Grid.ceilDiv(cols / 8, THREADS), Math.min(rows, Grid.MAX_Y), THREADS,
                new KernelArgs().ptr(gate).ptr(up).ptr(out).i32(rows).i32(cols));
    }

    /** x = cap * tanh(x / cap). */
    void softcap(CudaTensor x, float cap) {
        launch("jemma_softcap", x.rows(), x.cols(), new KernelArgs()
                .ptr(x.address()).i64(x.rowStride()).i32(x.rows()).i32(x.cols()).f32(cap));
    }

    /** y *= s. */
    void scale(CudaTensor y, float s) {
        launch("jemma_scale", y.rows(), y.cols(), new KernelArgs()
                .ptr(y.address()).i64(y.rowStride()).i32(y.rows()).i32(y.cols()).f32(s));
    }

    /** y += x. */
    void add(CudaTensor y, CudaTensor x) {
        launch("jemma_add", y.rows(), y.cols(), new KernelArgs()
                .ptr(y.address()).i64(y.rowStride()).ptr(x.address()).i64(x.rowStride()).i32(y.rows()).i32(y.cols()));
    }

    /** dst row r = src row (index == 0 ? r : index[r]); index is a device address of dst.rows() ints. */
    void copyRows(CudaTensor src, CudaTensor dst, long index) {
        launch("jemma_copy_rows", dst.rows(), dst.cols(), new KernelArgs()
                .ptr(src.address()).i64(src.rowStride()).ptr(dst.address()).i64(dst.rowStride())
                .ptr(index).i32(dst.rows()).i32(dst.cols()));
    }

    /** dst = float(src): src contiguous bf16 [rows, cols] at a device address. */
    void fromBf16(long src, CudaTensor dst) {
        launch("jemma_from_bf16", dst.rows(), dst.cols(), new KernelArgs()
                .ptr(src).ptr(dst.address()).i64(dst.rowStride()).i32(dst.rows()).i32(dst.cols()));
    }

    /**
     * t with its fp32 values: where they are only in its bf16 copy (a bf16 projection output, or q after the QKV
     * norm's bf16-q pass), widened in place and the fp32 marked current; otherwise t as it is.
     */
    CudaTensor widened(CudaTensor t) {
        long at = t.onlyOperand();
        if (at != 0) {
            fromBf16(at, t);
            t.operand().current(true);
        }
        return t;
    }

    /** dst (contiguous bf16 [rows, cols] at a device address) = bf16(src). */
    void toBf16(CudaTensor src, long dst) {
        if (Grid.vec4(src.address(), src.rowStride(), src.cols()) && (dst & 7) == 0) {
            context.launch("jemma_to_bf16_f4", Grid.ceilDiv(src.cols() / 4, THREADS), Math.min(src.rows(), Grid.MAX_Y),
                    THREADS, new KernelArgs()
                            .ptr(src.address()).i64(src.rowStride()).ptr(dst).i32(src.rows()).i32(src.cols()));
            return;
        }
        launch("jemma_to_bf16", src.rows(), src.cols(), new KernelArgs()
                .ptr(src.address()).i64(src.rowStride()).ptr(dst).i32(src.rows()).i32(src.cols()));
    }
}
