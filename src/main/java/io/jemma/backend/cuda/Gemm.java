package io.jemma.backend.cuda;

/**
 * {@code y = x @ w^T} on cuBLASLt: x fp32 [tokens, in] is first rounded to a contiguous bf16 copy (the
 * tensor cores take bf16 x bf16 with fp32 accumulation), w bf16 [out, in], y fp32 [tokens, out].
 *
 * <p>Row-major to cuBLASLt's column-major: a row-major [R, C] matrix is a column-major C x R one with
 * leading dimension = its row stride. So w is K x N (ld K), x is K x T (ld K), y is N x T (ld = y's row
 * stride), and {@code y^T = op(w) * x} with op = transpose on A = w and none on B = x: the "TN" form,
 * the layout every cuBLASLt tensor-core kernel supports. m = N (out features), n = T (tokens), k = K.
 */
final class Gemm implements AutoCloseable {
    private final CudaContext context;
    private final CublasLt lt;
    private final ActivationKernels activations;
    private final DeviceBuffer workspace;
    private final java.util.function.LongFunction<DeviceBuffer> temporaries;
    /** Decode-size matmuls (up to {@link #GEMV_MAX_ROWS} rows) on our GEMV kernel instead of cuBLASLt. */
    static final int GEMV_MAX_ROWS = 4;
    private boolean gemv = !"false".equals(System.getProperty("jemma.cuda.gemv"));
    private DeviceBuffer scratch;
    /** Replaced operand buffers stay allocated: a captured graph may still refer to them. */
    private final java.util.List<DeviceBuffer> retired = new java.util.ArrayList<>();

    Gemm(CudaContext context, CublasLt lt, ActivationKernels activations,
         java.util.function.LongFunction<DeviceBuffer> temporaries) {
        this.context = context;
        this.lt = lt;
        this.activations = activations;
        this.temporaries = temporaries;
        this.workspace = context.memory().allocatePermanent(CublasLt.WORKSPACE_BYTES);
    }

    void matmul(CudaTensor x, CudaWeight w, CudaTensor y) {
        int tokens = x.rows();
        int in = x.cols();
        int out = y.cols();
        if (tokens == 0 || out == 0) {
            return;
        }
        if (gemv && tokens <= GEMV_MAX_ROWS && in % 8 == 0 && (x.address() & 15) == 0 && (x.rowStride() & 3) == 0
                && (w.address() & 15) == 0) {
            int blocks = (int) Math.min(Grid.ceilDiv(out, 4), 64L * context.info().multiprocessors());
            context.launch("jemma_gemv_bf16_" + tokens, blocks, 1, 128, new KernelArgs()
                    .ptr(x.address()).i64(x.rowStride()).ptr(w.address()).i32(in).i32(out)
                    .ptr(y.address()).i64(y.rowStride()));
            return;
        }
        if (alignment(y.address(), (long) y.rowStride() * Float.BYTES) < 16) {
            // A column view at an odd float offset, or rows whose length is not a multiple of 4 floats:
            // go through a copy whose rows are padded to 16 bytes (else this would recurse forever).
            int stride = (out + 3) & ~3;
            CudaTensor tmp = new CudaTensor(temporaries.apply((long) tokens * stride * Float.BYTES), 0, tokens,
                    out, stride);
            matmul(x, w, tmp);
            activations.copyRows(tmp, y, 0);
            return;
        }
        long xBytes = (long) tokens * in * 2;
        if (scratch == null || scratch.bytes() < xBytes) {
            // Reused by every GEMM: stream order keeps one GEMM's read before the next conversion's write.
            // Sizes only grow (at least doubling), so the retired ones add up to less than the current.
            if (scratch != null) {
                retired.add(scratch);
            }
            scratch = context.memory().allocate(Math.max(xBytes, Math.max(1L << 20, 2 * (scratch == null ? 0 : scratch.bytes()))));
        }
        activations.toBf16(x, scratch.address());
        CublasLt.GemmKey key = new CublasLt.GemmKey(out, tokens, in, in, in, y.rowStride(),
                alignment(w.address(), (long) in * 2), alignment(scratch.address(), (long) in * 2),
                alignment(y.address(), (long) y.rowStride() * Float.BYTES));
        lt.gemm(key, w.address(), scratch.address(), y.address(), workspace, context.stream().handle());
        if (context.debugSync()) {
            context.synchronize();
        }
    }

    /** Whether decode-size matmuls use the GEMV kernel (benchmarks compare both). */
    void useGemv(boolean on) {
        gemv = on;
    }

    boolean usesGemv() {
        return gemv;
    }

    /** The alignment (bytes, power of two, at most 256) of every column start: base address and ld. */
    static int alignment(long address, long ldBytes) {
        return (int) Math.min(Long.lowestOneBit(address | 256), Long.lowestOneBit(ldBytes | 256));
    }

    @Override
    public void close() {
        lt.close();
    }
}
