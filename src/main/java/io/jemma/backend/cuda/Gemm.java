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
    /**
     * Where cuBLASLt beats the GEMV kernel at 1 token (H200, tools/gpu/bench.sh --sections=gemv, graphs of
     * repeats, operand conversion included): long rows (down_proj 5376 x 21504: 57.5 vs 63.3 us; the full
     * layers' o_proj 5376 x 16384: 45.9 vs 53.1 us) and the vocabulary-wide lm_head (262144 x 5376: 631 vs
     * 664 us). The GEMV kernel keeps the rest (q+k+v 45.8 vs 53.9 us, gate+up 112 vs 120 us, o_proj 26.5 vs
     * 26.0 us). Tried and dropped (docs in src-native-kernels/NOTES.md): a stream-K GEMV, two rows in flight
     * per block, programmatic dependent launches.
     */
    static final int CUBLAS_FROM_K = 16384;
    static final long CUBLAS_FROM_ROWS = 131072;
    private boolean gemv = !"false".equals(System.getProperty("jemma.cuda.gemv"));
    /**
     * Matmuls of up to this many rows take the GEMV kernel (at most {@link #GEMV_MAX_ROWS}; benchmarks vary it).
     * 1 by default: from 2 rows the kernel's fp32 FMAs (T per weight, plus x's rounding per row) make it
     * instruction-bound (H200, 31B: a decode step at batch 4 took 45.7 ms on it against 21.4 ms at batch 8 on
     * cuBLASLt, whose tensor cores take the rows for free; a 4-token verify at batch 1 45.3 ms).
     */
    private int gemvRows = Math.min(GEMV_MAX_ROWS, Integer.getInteger("jemma.cuda.gemv-max-rows", 1));
    /**
     * cuBLASLt algorithms timed per prefill-size GEMM shape (-Djemma.cuda.gemm-autotune=N, default 8; 0 or 1: the
     * heuristics' first everywhere): from {@link #AUTOTUNE_FROM_ROWS} tokens the heuristics' first N candidates are
     * timed on the first eager call of a shape whose token bucket was not tuned yet and the fastest kept for the
     * bucket (CublasLt.gemm). H200, 31B 8k prefill: the GEMMs -26 ms, the prefill wall -14 ms (NOTES.md, mlp4). The
     * choice depends on timing: two processes may pick different algorithms for the same shape, so prefill logits
     * agree across runs to fp32 accumulation order, not bit for bit (decode and verify steps are below the rows).
     */
    private static final int AUTOTUNE = Integer.getInteger("jemma.cuda.gemm-autotune", 8);
    /**
     * Tuned only from this many tokens: mlp4 saw batch-1 decode 0.34 ms slower with every shape tuned (a choice for
     * the 1-row cuBLASLt GEMMs that won alone and lost inside the step's graph).
     */
    static final int AUTOTUNE_FROM_ROWS = 512;
    /** Warps per GEMV block for every launch (benchmarks: -Djemma.cuda.gemv-warps=4..32); 0: chosen per shape. */
    private static final int GEMV_WARPS = Integer.getInteger("jemma.cuda.gemv-warps", 0);
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
        matmul(x, new CudaWeight[] {w}, new CudaTensor[] {y});
    }

    /**
     * {@code ys[i] = x @ ws[i]^T} for weights that share their input (q, k, v; gate, up): at decode sizes
     * one GEMV launch for up to three of them, else x is converted to bf16 once (unless its writer left a current
     * bf16 copy) and each is a cuBLASLt GEMM.
     */
    void matmul(CudaTensor x, CudaWeight[] ws, CudaTensor[] ys) {
        int tokens = x.rows();
        int in = x.cols();
        if (tokens == 0) {
            return;
        }
        if (x.fp32Stale() && x.currentOperand() == 0) {
            throw new IllegalStateException(x + " holds no fp32 values and no bf16 copy of them (a column view of a"
                    + " bf16-only tensor, or K / V after the QKV norm stored them only in the cache)");
        }
        if (gemvFits(x, ws) && !x.fp32Stale()) {
            for (int from = 0; from < ws.length; from += 3) {
                gemv(x, ws, ys, from, Math.min(3, ws.length - from));
            }
            return;
        }
        // The bf16 copy its writer made (Backend.allocateMatmulInput), else a conversion pass.
        long scratchAt = x.currentOperand();
        if (scratchAt == 0) {
            scratchAt = toBf16(x);
        }
        for (int i = 0; i < ws.length; i++) {
            long yAt = bf16Output(ys[i]);
            if (yAt != 0) {
                gemmBf16(scratchAt, tokens, in, ws[i], yAt);
                ys[i].operand().currentOnly();
            } else {
                gemm(scratchAt, tokens, in, ws[i], ys[i]);
            }
        }
    }

    /**
     * Where a GEMM writes y as bf16 only (cuBLASLt bf16 D, fp32 accumulation), else 0: y is a projection output
     * ({@link io.jemma.backend.Backend#allocateMatmulOutput}) with more rows than the GEMV takes, whose reader (the QKV
     * norm, the residual step) takes bf16 input. transformers computes these projections in bf16.
     */
    private static long bf16Output(CudaTensor y) {
        if (y.operand() == null || !y.operand().gemmOutput() || y.rows() <= GEMV_MAX_ROWS || y.cols() % 8 != 0) {
            return 0;
        }
        long at = y.operandToWrite();
        return (at & 15) == 0 ? at : 0;
    }

    /**
     * The gated MLP's input, {@code out = gelu_tanh(x @ gate^T) * (x @ up^T)}, fused where it can be: at decode sizes
     * (when {@link #useGemvGelu} is on) one GEMV launch that computes both dot products of each output in one block and
     * writes the activation (fp32 at {@code out}, and the bf16 copy at {@code outBf16} unless 0); for a prefill with
     * {@code outBf16} (not 0), bf16 gate and up GEMM outputs and one activation pass that writes only the bf16 copy
     * (then out's fp32 values are not written). Does nothing where neither fits.
     *
     * @return what was written
     */
    Gated gated(CudaTensor x, CudaWeight gate, CudaWeight up, CudaTensor out, long outBf16) {
        int tokens = x.rows();
        int width = out.cols();
        CudaWeight[] both = {gate, up};
        if (gemvGelu && gemvFits(x, both) && !x.fp32Stale()) {
            String kernel = "jemma_gemv_gelu_bf16_" + tokens;
            int[] shape = gemvShape(kernel, width, 2 * (x.cols() / 8));
            context.launch(kernel, Math.min(width, shape[1]), 1, 1, 32 * shape[0], 0, new KernelArgs()
                    .ptr(x.address()).i64(x.rowStride()).i32(x.cols()).ptr(gate.address()).ptr(up.address())
                    .ptr(out.address()).i64(out.rowStride()).ptr(outBf16).i32(width));
            return Gated.FP32_AND_COPY;
        }
        if (outBf16 == 0 || tokens <= GEMV_MAX_ROWS || width % 8 != 0 || (outBf16 & 15) != 0) {
            return Gated.NOTHING;
        }
        long xAt = x.currentOperand();
        if (xAt == 0) {
            xAt = toBf16(x);
        }
        long bytes = (long) tokens * width * 2;
        DeviceBuffer g = temporaries.apply(bytes);                 // [tokens, width] bf16 each
        DeviceBuffer u = temporaries.apply(bytes);
        gemmBf16(xAt, tokens, x.cols(), gate, g.address());
        gemmBf16(xAt, tokens, x.cols(), up, u.address());
        activations.geluTanhMulBf16(g.address(), u.address(), outBf16, tokens, width);
        return Gated.COPY_ONLY;
    }

    /**
     * Whether decode sizes take the fused GEMV (jemma_gemv_gelu_bf16_T): 108 us at 31B's 1-token shape against
     * 115 us for the GEMV over both weights plus the gelu launch, 0.5 ms off a batch-1 step
     * (src-native-kernels/NOTES.md). -Djemma.cuda.gemv-gelu=false for the unfused pair.
     */
    private boolean gemvGelu = Boolean.parseBoolean(System.getProperty("jemma.cuda.gemv-gelu", "true"));

    void useGemvGelu(boolean on) {
        gemvGelu = on;
    }

    boolean usesGemvGelu() {
        return gemvGelu;
    }

    /**
     * What {@link #gated} wrote: nothing (not its shapes), out's fp32 values (and the bf16 copy when asked), or
     * only the bf16 copy.
     */
    enum Gated { NOTHING, FP32_AND_COPY, COPY_ONLY }

    /** y = x @ w^T into a contiguous bf16 {@code [tokens, out]} at {@code yAt}, x bf16 at {@code xAt}. */
    private void gemmBf16(long xAt, int tokens, int in, CudaWeight w, long yAt) {
        long out = w.dim(0);
        CublasLt.GemmKey key = new CublasLt.GemmKey(out, tokens, in, in, in, out, alignment(w.address(), (long) in * 2),
                alignment(xAt, (long) in * 2), alignment(yAt, out * 2), CublasLt.CUDA_R_16BF);
        lt.gemm(key, w.address(), xAt, yAt, workspace, context.stream().handle(), tuner(tokens), AUTOTUNE);
        if (context.debugSync()) {
            context.synchronize();
        }
    }

    private boolean gemvFits(CudaTensor x, CudaWeight[] ws) {
        int in = x.cols();
        if (!gemv || x.rows() > gemvRows || in % 8 != 0 || (x.address() & 15) != 0 || (x.rowStride() & 3) != 0) {
            return false;
        }
        long outs = 0;
        for (CudaWeight w : ws) {
            if ((w.address() & 15) != 0 || w.dim(1) != in) {
                return false;
            }
            outs += w.dim(0);
        }
        return in < CUBLAS_FROM_K && outs < CUBLAS_FROM_ROWS;
    }

    /** One launch for weights {@code [from, from + count)} (count <= 3). */
    private void gemv(CudaTensor x, CudaWeight[] ws, CudaTensor[] ys, int from, int count) {
        long rows = 0;
        KernelArgs args = new KernelArgs().ptr(x.address()).i64(x.rowStride()).i32(x.cols());
        for (int i = 0; i < 3; i++) {
            if (i < count) {
                CudaTensor y = ys[from + i];
                args.ptr(ws[from + i].address()).ptr(y.address()).i64(y.rowStride()).i32(y.cols());
                rows += y.cols();
            } else {
                args.ptr(0).ptr(0).i64(0).i32(0);
            }
        }
        if (rows == 0) {
            return;
        }
        String kernel = "jemma_gemv_bf16_" + x.rows();
        int[] shape = gemvShape(kernel, rows, x.cols() / 8);
        context.launch(kernel, (int) Math.min(rows, shape[1]), 1, 1, 32 * shape[0], 0, args);
    }

    /**
     * {warps per block, concurrent blocks}. Two things decide a GEMV's speed once the loads are wide: the
     * rows must split evenly over the blocks the GPU runs at once (a last, partial wave of rows leaves SMs
     * idle), and each SM must have enough bytes in flight (a block has one row in flight, at most
     * {@code 32 * warps * 8} 16-byte loads of it; about 64 KB per SM hides the memory latency). The score
     * is the product of the two; the fewest warps win ties. At most one warp per 256-element strip.
     */
    private int[] gemvShape(String kernel, long rows, int chunks) {
        if (GEMV_WARPS > 0) {                                   // experiments: every launch at this block size
            return new int[] {GEMV_WARPS, context.info().multiprocessors() * blocksPerSm(kernel, 32 * GEMV_WARPS)};
        }
        int[] best = null;
        double bestScore = -1;
        for (int warps = 4; warps <= 32; warps *= 2) {
            if (warps > 4 && warps * 32 > chunks) {
                break;
            }
            int perSm = blocksPerSm(kernel, 32 * warps);
            int concurrent = context.info().multiprocessors() * perSm;
            double r = (double) rows / concurrent;
            double balance = r / Math.ceil(r);
            double inFlight = perSm * Math.min(chunks, 32.0 * warps * 8) * 16;
            double score = balance * Math.min(1, inFlight / 65536);
            if (score > bestScore + 1e-9) {
                bestScore = score;
                best = new int[] {warps, concurrent};
            }
        }
        return best;
    }

    private final java.util.Map<String, Integer> occupancy = new java.util.HashMap<>();

    private int blocksPerSm(String kernel, int threads) {
        return occupancy.computeIfAbsent(kernel + "/" + threads, k -> {
            int[] n = new int[1];
            Cu.check(jcuda.driver.JCudaDriver.cuOccupancyMaxActiveBlocksPerMultiprocessor(n, context.function(kernel),
                    threads, 0), "cuOccupancyMaxActiveBlocksPerMultiprocessor(" + kernel + ")");
            return Math.max(1, n[0]);
        });
    }

    /** x rounded to a contiguous bf16 copy in the shared operand buffer; its device address. */
    private long toBf16(CudaTensor x) {
        long xBytes = (long) x.rows() * x.cols() * 2;
        if (scratch == null || scratch.bytes() < xBytes) {
            // Reused by every GEMM: stream order keeps one GEMM's read before the next conversion's write.
            // Sizes only grow (at least doubling), so the retired ones add up to less than the current.
            if (scratch != null) {
                retired.add(scratch);
            }
            long grown = Math.max(1L << 20, 2 * (scratch == null ? 0 : scratch.bytes()));
            scratch = context.memory().allocate(Math.max(xBytes, grown));
        }
        activations.toBf16(x, scratch.address());
        return scratch.address();
    }

    /** y = x @ w^T with x already bf16 at {@code xAt}, {@code [tokens, in]} contiguous. */
    private void gemm(long xAt, int tokens, int in, CudaWeight w, CudaTensor y) {
        int out = y.cols();
        if (out == 0) {
            return;
        }
        if (alignment(y.address(), (long) y.rowStride() * Float.BYTES) < 16) {
            // A column view at an odd float offset, or rows whose length is not a multiple of 4 floats:
            // go through a copy whose rows are padded to 16 bytes.
            int stride = (out + 3) & ~3;
            CudaTensor tmp = new CudaTensor(temporaries.apply((long) tokens * stride * Float.BYTES), 0, tokens,
                    out, stride);
            gemm(xAt, tokens, in, w, tmp);
            activations.copyRows(tmp, y, 0);
            return;
        }
        CublasLt.GemmKey key = new CublasLt.GemmKey(out, tokens, in, in, in, y.rowStride(),
                alignment(w.address(), (long) in * 2), alignment(xAt, (long) in * 2),
                alignment(y.address(), (long) y.rowStride() * Float.BYTES));
        lt.gemm(key, w.address(), xAt, y.address(), workspace, context.stream().handle(), tuner(tokens), AUTOTUNE);
        if (context.debugSync()) {
            context.synchronize();
        }
    }

    /**
     * A tuner for a new GEMM shape of {@code tokens} rows when autotuning is on, the rows are prefill-size and this is
     * not a graph capture (it synchronizes).
     */
    private CublasLt.Tuner tuner(int tokens) {
        return AUTOTUNE > 1 && tokens >= AUTOTUNE_FROM_ROWS && !context.capturing() ? this::fastest : null;
    }

    /** Each candidate run once, then timed over 3 runs between two events; the index of the fastest. */
    private int fastest(int count, java.util.function.IntConsumer run) {
        jcuda.driver.CUevent start = new jcuda.driver.CUevent();
        jcuda.driver.CUevent end = new jcuda.driver.CUevent();
        Cu.check(jcuda.driver.JCudaDriver.cuEventCreate(start, 0), "cuEventCreate");
        Cu.check(jcuda.driver.JCudaDriver.cuEventCreate(end, 0), "cuEventCreate");
        try {
            int best = 0;
            float bestMs = Float.MAX_VALUE;
            float[] ms = new float[1];
            for (int i = 0; i < count; i++) {
                try {
                    run.accept(i);
                    Cu.check(jcuda.driver.JCudaDriver.cuEventRecord(start, context.stream()), "cuEventRecord");
                    for (int r = 0; r < 3; r++) {
                        run.accept(i);
                    }
                    Cu.check(jcuda.driver.JCudaDriver.cuEventRecord(end, context.stream()), "cuEventRecord");
                    Cu.check(jcuda.driver.JCudaDriver.cuEventSynchronize(end), "cuEventSynchronize");
                    Cu.check(jcuda.driver.JCudaDriver.cuEventElapsedTime(ms, start, end), "cuEventElapsedTime");
                } catch (CudaException e) {
                    continue;                                   // a candidate this shape does not run with
                }
                if (ms[0] < bestMs) {
                    bestMs = ms[0];
                    best = i;
                }
            }
            return best;
        } finally {
            jcuda.driver.JCudaDriver.cuEventDestroy(start);
            jcuda.driver.JCudaDriver.cuEventDestroy(end);
        }
    }

    /** Whether decode-size matmuls use the GEMV kernel (benchmarks compare both). */
    void useGemv(boolean on) {
        gemv = on;
    }

    boolean usesGemv() {
        return gemv;
    }

    /** Matmuls of up to {@code rows} rows (1 to {@link #GEMV_MAX_ROWS}) take the GEMV kernel, larger ones cuBLASLt. */
    void gemvMaxRows(int rows) {
        if (rows < 1 || rows > GEMV_MAX_ROWS) {
            throw new IllegalArgumentException("GEMV rows 1 to " + GEMV_MAX_ROWS + ", not " + rows);
        }
        gemvRows = rows;
    }

    int gemvMaxRows() {
        return gemvRows;
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
