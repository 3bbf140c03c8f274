package io.jemma.backend.cuda;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionDispatch;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.KvGeometry;
import io.jemma.backend.Backend;
import io.jemma.backend.DType;
import io.jemma.backend.DummyWeights;
import io.jemma.backend.Graph;
import io.jemma.backend.HostTensor;
import io.jemma.backend.Positions;
import io.jemma.backend.QkvNormMode;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import io.jemma.engine.sampling.SampleResult;
import io.jemma.engine.sampling.SamplingBatch;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * The GPU backend: JCuda's driver API for memory, copies and launches of our own kernels
 * (src-native-kernels, loaded from the fatbin resource), cuBLASLt through java.lang.foreign for the
 * GEMMs.
 *
 * <p>Numbers: activations are fp32 in device memory, as on the CPU, and every kernel computes in fp32;
 * weights are bf16 matrices and fp32 vectors. The GEMMs round their activation operand to bf16 (the
 * tensor cores' input type) and accumulate in fp32, so matmul results differ from the CPU's fp32
 * activations by bf16 rounding (relative error around 1e-3); everything else matches the CPU to fp32
 * rounding.
 *
 * <p>All work goes to one stream in issue order; only {@link #toHost} (and large uploads) wait for it.
 * See {@link CudaContext} for the threading rule (one thread at a time). Attention runs over a paged
 * bf16 KV cache ({@link TritonAttention}, the general backend, or {@link TrtllmMhaAttention}); routed experts
 * run in {@link MoeKernels}.
 *
 * <p>Serving: once the model calls {@link #releaseActivations()} (every forward does), activations come
 * from an {@link ActivationArena} rewound per step and per layer, so a step's tensors have the same
 * addresses every time; the step's per-row inputs ({@link #beginStep}) and the attention metadata live in
 * fixed buffers; together they make a whole decode step capturable as a CUDA graph ({@link #captureGraph}).
 * Sampling runs on the device ({@link CudaSampler}); weights can be generated on the device
 * ({@link #dummyWeight}).
 */
public final class CudaBackend implements Backend {

    private static volatile CudaAvailability probed;
    /** Whether the QKV norm stores K/V for the attention backends (default); false: they store them (bisecting). */
    private static final boolean FUSED_KV_WRITE = !"false".equals(System.getProperty("jemma.cuda.fused-kv-write"));

    private final CudaContext context;
    private final NormKernels norms;
    private final QkvNormKernels qkvNorms;
    private boolean storeKEqVOnce = Boolean.getBoolean("jemma.kv-store-k-eq-v-once");
    private final ActivationKernels activations;
    private final EmbedKernels embeddings;
    private final Gemm gemm;
    private final MoeKernels moe;
    private volatile String attentionBackend = AttentionDispatch.TRITON;
    private final CudaSampler sampler;
    private final StableInts stepIds;
    private final StableInts stepPositions;
    private final StableInts stepRows;
    private int[] stepIdsHost;
    private int[] stepPositionsHost;
    private int[] stepRowsHost;
    private ActivationArena arena;
    private long arenaChunkBytes = 256L << 20;

    /** The backend on device 0; throws IllegalStateException with the reason when CUDA is unavailable. */
    public CudaBackend() {
        this(0);
    }

    public CudaBackend(int device) {
        CudaAvailability a = available(device);
        if (!a.available()) {
            throw new IllegalStateException("CUDA backend unavailable: " + a.reason());
        }
        context = new CudaContext(device);
        activations = new ActivationKernels(context);
        norms = new NormKernels(context);
        qkvNorms = new QkvNormKernels(context);
        embeddings = new EmbedKernels(context);
        gemm = new Gemm(context, new CublasLt(), activations, this::activationBuffer);
        moe = new MoeKernels(context);
        sampler = new CudaSampler(context, this::activationBuffer);
        stepIds = new StableInts(context, "step ids", 4096);
        stepPositions = new StableInts(context, "step positions", 4096);
        stepRows = new StableInts(context, "step logit rows", 1024);
    }

    /** Whether device 0 can run this backend, and why not (probed once per JVM). */
    public static CudaAvailability available() {
        CudaAvailability a = probed;
        if (a == null) {
            synchronized (CudaBackend.class) {
                if (probed == null) {
                    probed = CudaProbe.probe(0);
                }
                a = probed;
            }
        }
        return a;
    }

    /** Whether the given device can run this backend. */
    public static CudaAvailability available(int device) {
        return device == 0 ? available() : CudaProbe.probe(device);
    }

    /** The GPU this backend runs on. */
    public DeviceInfo device() {
        return context.info();
    }

    /** {free, total} bytes of device memory now, as the driver sees it (other processes' use counts). */
    public long[] memoryInfo() {
        context.enter();
        return context.memoryInfo();
    }

    /** Device memory held for weights, KV caches and fixed buffers so far. */
    public long heldBytes() {
        return context.memory().permanentBytes();
    }

    /** Size of the activation arena's chunks (the first one is usually all a step needs); before the first step. */
    public void activationChunkBytes(long bytes) {
        arenaChunkBytes = Math.max(1L << 20, bytes);
    }

    @Override
    public String name() {
        return "cuda";
    }

    // ---- memory ----

    @Override
    public Weight load(HostTensor tensor) {
        context.enter();
        DType type = CudaWeight.deviceType(tensor.rank());
        long bytes = WeightPacking.deviceBytes(tensor);
        DeviceBuffer buffer = context.memory().allocatePermanent(bytes);
        context.transfers().upload(WeightPacking.source(tensor), bytes, buffer, 0);
        return new CudaWeight(tensor.name(), type, tensor.shape(), buffer);
    }

    @Override
    public Weight dummyWeight(String name, long[] shape, DType dtype, long seed) {
        context.enter();
        long numel = 1;
        for (long d : shape) {
            numel = Math.multiplyExact(numel, d);
        }
        DummyWeights.check(name, numel);
        DType type = CudaWeight.deviceType(shape.length);
        DeviceBuffer buffer = context.memory().allocatePermanent(numel * type.bytes());
        if (shape.length <= 1) {
            context.fill32(buffer, 0, numel, Float.floatToRawIntBits(1f));        // vectors are ones
        } else if (numel > 0) {
            int blocks = (int) Math.min(Grid.ceilDiv(Grid.ceilDiv(numel, 8), 256), 64L * context.info().multiprocessors());
            context.launch("jemma_dummy_bf16", blocks, 1, 256, new KernelArgs()
                    .i32(DummyWeights.key(seed, name)).f32(DummyWeights.range(shape)).i64(numel)
                    .i32(dtype == DType.F16 ? 1 : 0).ptr(buffer.address()));
        }
        return new CudaWeight(name, type, shape, buffer);
    }

    @Override
    public void releaseActivations() {
        context.enter();
        if (arena == null) {
            arena = new ActivationArena(context.memory(), arenaChunkBytes);
        }
        arena.reset();
    }

    @Override
    public long activationMark() {
        return arena == null ? 0 : arena.mark();
    }

    @Override
    public void releaseActivationsTo(long mark) {
        if (arena != null) {
            arena.reset(mark);
        }
    }

    /** Activation memory: the arena once the model drives steps, else the caching allocator. */
    DeviceBuffer activationBuffer(long bytes) {
        return arena != null ? arena.allocate(bytes) : context.memory().allocate(bytes);
    }

    /** Decode-size matmuls (up to 4 rows) on the GEMV kernel (default) or on cuBLASLt (benchmarks compare). */
    public void useGemv(boolean on) {
        gemm.useGemv(on);
    }

    /** Matmuls of up to {@code rows} rows take the GEMV kernel (default 4; benchmarks compare). */
    public void gemvMaxRows(int rows) {
        gemm.gemvMaxRows(rows);
    }

    public int gemvMaxRows() {
        return gemm.gemvMaxRows();
    }

    public boolean usesGemv() {
        return gemm.usesGemv();
    }

    /** Decode-size gated MLP inputs on the fused GEMV + gelu kernel (off by default; benchmarks compare). */
    public void useGemvGelu(boolean on) {
        gemm.useGemvGelu(on);
    }

    public boolean usesGemvGelu() {
        return gemm.usesGemvGelu();
    }

    /** Device memory the activation arena holds (0 before the first step). */
    public long activationBytes() {
        return arena == null ? 0 : arena.reservedBytes();
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        CudaTensor t = uninitialized(rows, cols);
        context.fill32(t.buffer(), 0, (long) rows * cols, 0);
        return t;
    }

    @Override
    public Tensor allocateScratch(int rows, int cols) {
        return uninitialized(rows, cols);
    }

    /**
     * With a bf16 copy ({@link CudaTensor.Bf16Operand}) when the matmul reading it will be a cuBLASLt GEMM (more rows
     * than the GEMV takes, or rows as long as {@link Gemm#CUBLAS_FROM_K}): rmsNorm, the fused addRmsNorm and
     * geluTanhMul then write it alongside and the GEMM skips its conversion pass. The values are the same roundings the
     * conversion makes.
     */
    @Override
    public Tensor allocateMatmulInput(int rows, int cols) {
        CudaTensor t = uninitialized(rows, cols);
        // Decode sizes read fp32 x on the GEMV kernel, except long rows, which go to cuBLASLt (Gemm.CUBLAS_FROM_K).
        boolean gemv = rows <= Gemm.GEMV_MAX_ROWS && gemm.usesGemv() && cols < Gemm.CUBLAS_FROM_K;
        if (gemv || cols % 4 != 0 || rows == 0) {
            return t;
        }
        DeviceBuffer copy = activationBuffer(Math.max(8, (long) rows * cols * 2));
        return new CudaTensor(t.buffer(), 0, rows, cols, cols, new CudaTensor.Bf16Operand(copy));
    }

    /**
     * Prefill projection outputs as bf16 ({@link #allocateMatmulOutput}), on by default
     * (-Djemma.cuda.bf16-projections=false for fp32 outputs). 8k prefill of 31B on the H200 924.2 -> 912.1 ms in one
     * call (docs/benchmarks.md, session 5). The extra roundings move the golden tiny-31b's logits up to ~6.5e-2 of
     * their range from transformers' fp32, less than transformers' own bf16 forward moves them (8.2e-2 eager, 1.03e-1
     * sdpa: tools/reference/bf16_deviation.py), which is what GoldenModelGpuTest holds rows over its 6e-2 to.
     */
    public static final boolean BF16_PROJECTIONS = Boolean.parseBoolean(System.getProperty("jemma.cuda.bf16-projections",
            "true"));
    /**
     * The fewest rows whose projections come out as bf16 (default {@value}): prefill chunks, where the activations'
     * bytes count against the weights' (a [512, 16384] fp32 q/k/v output is 34 MB against 176 MB of weights).
     * Decode and verify steps stay below it, so an eager step and its graph replay (padded to the bucket's rows, so
     * other GEMM algorithms) differ only by fp32 accumulation order, not by bf16 roundings of it: with bf16 outputs a
     * 5-sequence verify (20 rows eager, 32 replayed) flipped a tiny-31b draft chain's near tie (DecodeGraphGpuTest).
     */
    public static final int BF16_PROJECTION_MIN_ROWS = 512;
    private int bf16ProjectionMinRows = BF16_PROJECTION_MIN_ROWS;

    /**
     * With bf16 projection inputs (prefill rows), on compute capability 9.0 and at the head dims of the sm_90a _bq
     * attention kernels (256; 512 with -Djemma.cuda.bf16-q-hd512=true), the QKV norm stores q's result only as
     * bf16 in q's copy (the _bq kernels of qkv_norm.cu), which the sm_90a prefill attention reads as is, rounded as
     * it rounded fp32 q itself (TritonAttention; every other attention path widens it first). 8k prefill of 31B on
     * the H200 903.3 -> 901.4 / 901.8 ms in one call; -Djemma.cuda.bf16-q=false keeps fp32 q (session 5, qb5;
     * src-native-kernels/NOTES.md).
     */
    static final boolean BF16_Q = Boolean.parseBoolean(System.getProperty("jemma.cuda.bf16-q", "true"));
    /**
     * Head dim 512 too: off by default, its _split_bq kernel measured 3.9% slower than _split at 8k causal (7897 vs
     * 7603 us, about 3 ms over the 31B's 10 full layers; NOTES.md, qb5).
     */
    static final boolean BF16_Q_HD512 = Boolean.parseBoolean(System.getProperty("jemma.cuda.bf16-q-hd512", "false"));
    private boolean bf16Q = BF16_Q;

    /** Tests: whether the bf16-input QKV norm stores q only as bf16 ({@link #BF16_Q}). */
    void bf16Q(boolean on) {
        bf16Q = on;
    }

    /** Tests: bf16 projection outputs from this many rows (e.g. the golden checkpoints' short prompts). */
    public void bf16ProjectionsFromRows(int rows) {
        bf16ProjectionMinRows = Math.max(Gemm.GEMV_MAX_ROWS + 1, rows);
    }

    /**
     * With {@link #BF16_PROJECTIONS} (the default) and at least {@link #bf16ProjectionsFromRows} rows: {@link
     * #allocateBf16Output}. Otherwise a plain scratch tensor.
     */
    @Override
    public Tensor allocateMatmulOutput(int rows, int cols) {
        return BF16_PROJECTIONS && rows >= bf16ProjectionMinRows ? allocateBf16Output(rows, cols)
                : uninitialized(rows, cols);
    }

    /**
     * With a bf16 copy that a GEMM writing the tensor stores instead of the fp32 values (cuBLASLt bf16 D, {@link
     * Gemm#matmul}) when it has more rows than the GEMV takes: a prefill's q/k/v for the QKV norm and o_proj /
     * down_proj for the residual step, which read the copy (ops that read fp32 widen it first, {@link #fp32}).
     */
    CudaTensor allocateBf16Output(int rows, int cols) {
        CudaTensor t = uninitialized(rows, cols);
        if (rows <= Gemm.GEMV_MAX_ROWS || cols % 8 != 0) {
            return t;
        }
        DeviceBuffer copy = activationBuffer((long) rows * cols * 2);
        return new CudaTensor(t.buffer(), 0, rows, cols, cols, new CudaTensor.Bf16Operand(copy, true));
    }

    /** t with its fp32 values: a bf16-only GEMM output ({@link #allocateMatmulOutput}) is widened in place first. */
    private CudaTensor fp32(CudaTensor t) {
        return activations.widened(t);
    }

    /** A new contiguous tensor whose contents are whatever the memory held. */
    CudaTensor uninitialized(int rows, int cols) {
        context.enter();
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("shape [" + rows + ", " + cols + "]");
        }
        long bytes = Math.max(4, (long) rows * cols * Float.BYTES);
        return new CudaTensor(activationBuffer(bytes), 0, rows, cols, cols);
    }

    @Override
    public float[] toHost(Tensor t) {
        context.enter();
        CudaTensor c = CudaTensor.of(t);
        if (c.fp32Stale()) {
            throw new IllegalStateException(c + " holds its values only as its bf16 GEMM operand (gatedMlpInput)");
        }
        if (!c.contiguous()) {
            CudaTensor packed = uninitialized(c.rows(), c.cols());
            activations.copyRows(c, packed, 0);
            c = packed;
        }
        float[] out = new float[Math.multiplyExact(c.rows(), c.cols())];
        context.transfers().download(c.buffer(), c.byteOffset(), MemorySegment.ofArray(out));
        return out;
    }

    @Override
    public Tensor fromHost(float[] values, int rows, int cols) {
        if (values.length != (long) rows * cols) {
            throw new IllegalArgumentException(values.length + " values for [" + rows + ", " + cols + "]");
        }
        CudaTensor t = uninitialized(rows, cols);
        MemorySegment src = MemorySegment.ofArray(values);
        context.transfers().upload((offset, dst) -> MemorySegment.copy(src, offset, dst, 0, dst.byteSize()),
                src.byteSize(), t.buffer(), 0);
        // No wait needed: the values were copied into pinned memory before the async copies were issued.
        return t;
    }

    /**
     * Which attention backend {@link #attention} builds: the engine's {@code AttentionDispatch} choice,
     * "triton" (general; the default) or "trtllm_mha" (specialized decode / chain verify).
     */
    public void attentionBackend(String name) {
        if (!name.equals(AttentionDispatch.TRITON) && !name.equals(AttentionDispatch.TRTLLM_MHA)) {
            throw new IllegalArgumentException("the CUDA backend has attention backends triton and trtllm_mha, not "
                    + name);
        }
        attentionBackend = name;
    }

    /**
     * K stored once in k_eq_v layers (jemma.kv-store-k-eq-v-once; the engine sets it from its config, the system
     * property is the default for tools and tests): their KV buffers hold V only and the attention kernels derive
     * K = rope(V * k_norm) from it (NOTES.md "K=V stored once"). Set before the model is built.
     */
    public void storeKEqVOnce(boolean on) {
        storeKEqVOnce = on;
    }

    @Override
    public boolean storesKEqVOnce() {
        return storeKEqVOnce;
    }

    @Override
    public AttentionBackend attention(List<AttentionLayer> layers, KvGeometry geometry) {
        return attention(layers, geometry, List.of());
    }

    /** With K stored once (when {@link #storesKEqVOnce()}) in the given k_eq_v layers. */
    @Override
    public AttentionBackend attention(List<AttentionLayer> layers, KvGeometry geometry,
                                      List<io.jemma.attention.KeysFromValues> keysFromValues) {
        context.enter();
        java.util.Map<Integer, PagedKvBuffers.KeySource> derived = storeKEqVOnce ? keySources(layers, keysFromValues)
                : java.util.Map.of();
        TritonAttention triton = new TritonAttention(context, layers, geometry, derived);
        if (attentionBackend.equals(AttentionDispatch.TRTLLM_MHA)) {
            // Over triton's KV buffers: it serves the prefill chunks and trees of the same steps.
            return new TrtllmMhaAttention(context, layers, geometry.pageSize(), triton.buffers(), triton);
        }
        return triton;
    }

    /** The device addresses the attention kernels derive the given layers' keys with, by layer number. */
    java.util.Map<Integer, PagedKvBuffers.KeySource> keySources(List<AttentionLayer> layers,
                                                              List<io.jemma.attention.KeysFromValues> keysFromValues) {
        java.util.Map<Integer, PagedKvBuffers.KeySource> derived = new java.util.HashMap<>();
        for (io.jemma.attention.KeysFromValues k : keysFromValues) {
            AttentionLayer l = layers.stream().filter(x -> x.layer() == k.layer()).findFirst().orElseThrow(
                    () -> new IllegalArgumentException("K stored once in layer " + k.layer() + ", not an attention layer"));
            if (!l.writesKv() || k.inverseFrequencies().length != l.headDim() / 2) {
                throw new IllegalArgumentException("K stored once in layer " + k.layer() + ": it writes no KV, or "
                        + k.inverseFrequencies().length + " frequencies for head dim " + l.headDim());
            }
            derived.put(k.layer(), new PagedKvBuffers.KeySource(vector(k.kNorm(), l.headDim()).address(),
                    qkvNorms.frequencies(k.inverseFrequencies()),
                    PagedKvBuffers.KeySource.derivedChunks(k.inverseFrequencies())));
        }
        return derived;
    }

    /** KV caches are bf16 (the layout the fused QKV norm writes: [slot, kvHeads, headDim]). */
    @Override
    public int kvBytesPerElement() {
        return 2;
    }

    // ---- embeddings ----

    @Override
    public void embed(Weight table, int[] ids, float scale, Tensor out) {
        context.enter();
        CudaWeight w = CudaWeight.of(table);
        CudaTensor o = CudaTensor.of(out).written();
        if (w.shape().length != 2 || w.dim(1) != o.cols() || ids.length != o.rows()) {
            throw new IllegalArgumentException("embed " + ids.length + " ids of " + w + " into " + o);
        }
        long vocab = w.dim(0);
        for (int id : ids) {
            if (id < 0 || id >= vocab) {
                throw new IllegalArgumentException("token id " + id + " outside the vocabulary of " + vocab);
            }
        }
        if (ids.length > 0) {
            long at = stepAddress(ids, stepIdsHost, stepIds);
            embeddings.embed(w, at != 0 ? at : context.uploads().ints(ids), scale, o);
        }
    }

    // ---- linear algebra ----

    @Override
    public void matmul(Tensor x, Weight w, Tensor y) {
        context.enter();
        CudaTensor cx = CudaTensor.of(x);
        CudaTensor cy = CudaTensor.of(y).written();
        CudaWeight cw = CudaWeight.of(w);
        if (cw.shape().length != 2 || cw.dim(1) != cx.cols() || cw.dim(0) != cy.cols() || cx.rows() != cy.rows()) {
            throw new IllegalArgumentException("matmul " + cx + " x " + cw + " -> " + cy);
        }
        gemm.matmul(cx, cw, cy);
    }

    @Override
    public void matmul(Tensor x, Weight[] ws, Tensor[] ys) {
        context.enter();
        if (ws.length != ys.length) {
            throw new IllegalArgumentException(ws.length + " weights for " + ys.length + " outputs");
        }
        CudaTensor cx = CudaTensor.of(x);
        CudaWeight[] cw = new CudaWeight[ws.length];
        CudaTensor[] cy = new CudaTensor[ys.length];
        for (int i = 0; i < ws.length; i++) {
            cw[i] = CudaWeight.of(ws[i]);
            cy[i] = CudaTensor.of(ys[i]).written();
            if (cw[i].shape().length != 2 || cw[i].dim(1) != cx.cols() || cw[i].dim(0) != cy[i].cols()
                    || cx.rows() != cy[i].rows()) {
                throw new IllegalArgumentException("matmul " + cx + " x " + cw[i] + " -> " + cy[i]);
            }
        }
        gemm.matmul(cx, cw, cy);
    }

    @Override
    public void add(Tensor y, Tensor x) {
        context.enter();
        CudaTensor cy = CudaTensor.of(y).written();
        CudaTensor cx = CudaTensor.of(x);
        sameShape(cx, cy);
        activations.add(cy, cx);
    }

    @Override
    public void scale(Tensor y, float s) {
        context.enter();
        activations.scale(CudaTensor.of(y).written(), s);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        context.enter();
        CudaTensor s = CudaTensor.of(src);
        if (s.fp32Stale()) {
            throw new IllegalStateException(s + " holds its values only as its bf16 GEMM operand");
        }
        CudaTensor d = CudaTensor.of(dst).written();
        sameShape(s, d);
        activations.copyRows(s, d, 0);
    }

    @Override
    public void gatherRows(Tensor src, int[] rows, Tensor dst) {
        context.enter();
        CudaTensor s = CudaTensor.of(src);
        CudaTensor d = CudaTensor.of(dst).written();
        if (d.rows() != rows.length || d.cols() != s.cols()) {
            throw new IllegalArgumentException("gather " + rows.length + " rows of " + s + " into " + d);
        }
        for (int r : rows) {
            if (r < 0 || r >= s.rows()) {
                throw new IndexOutOfBoundsException("row " + r + " of " + s);
            }
        }
        if (rows.length > 0) {
            long at = stepAddress(rows, stepRowsHost, stepRows);
            activations.copyRows(s, d, at != 0 ? at : context.uploads().ints(rows));
        }
    }

    // ---- normalization ----

    @Override
    public void rmsNorm(Tensor x, Weight w, float eps, Tensor out) {
        rmsNormGroups(x, x.cols(), w, eps, out);
    }

    @Override
    public void rmsNormGroups(Tensor x, int groupWidth, Weight w, float eps, Tensor out) {
        context.enter();
        CudaTensor cx = fp32(CudaTensor.of(x));
        CudaTensor co = CudaTensor.of(out);
        sameShape(cx, co);
        if (groupWidth <= 0 || cx.cols() % groupWidth != 0) {
            throw new IllegalArgumentException(cx.cols() + " columns in groups of " + groupWidth);
        }
        CudaWeight cw = w == null ? null : vector(w, groupWidth);
        long operand = co.operandToWrite();
        if (operand != 0 && cw != null && groupWidth == cx.cols() && NormKernels.fusedFits(groupWidth, cx, co)
                && (cw.address() & 15) == 0) {
            norms.rmsNormBf16(cx, cw, co, operand, eps);
            co.operand().current(true);
            return;
        }
        norms.rmsNorm(cx, groupWidth, cw, eps, co.written());
    }

    @Override
    public void addRmsNorm(Tensor h, Tensor x, Weight w, float eps) {
        context.enter();
        CudaTensor ch = CudaTensor.of(h).written();
        CudaTensor cx = fp32(CudaTensor.of(x));
        sameShape(ch, cx);
        norms.addRmsNorm(ch, cx, vector(w, cx.cols()), eps);
    }

    /**
     * One kernel (norms.cu's jemma_add_rms_norm_next) for the residual add, the layer scalar and the next
     * block's input norm, with out's bf16 copy when it has one; the unfused sequence for shapes it does not take.
     */
    @Override
    public void addRmsNorm(Tensor h, Tensor x, Weight w, float eps, float scalar, Weight nextWeight, Tensor out) {
        context.enter();
        CudaTensor ch = CudaTensor.of(h).written();
        CudaTensor cx = CudaTensor.of(x);
        sameShape(ch, cx);
        int width = cx.cols();
        CudaWeight cw = vector(w, width);
        CudaWeight nw = nextWeight == null ? null : vector(nextWeight, width);
        CudaTensor co = nextWeight == null ? null : CudaTensor.of(out);
        if (co != null) {
            sameShape(cx, co);
            if (co.buffer() == ch.buffer() || co.buffer() == cx.buffer()) {
                throw new IllegalArgumentException("addRmsNorm's out must be distinct from h and x");
            }
        }
        if (!NormKernels.fusedFits(width, ch, cx, co) || (cw.address() & 15) != 0
                || (nw != null && (nw.address() & 15) != 0)) {
            fp32(cx);
            Backend.super.addRmsNorm(h, x, w, eps, scalar, nextWeight, out);
            return;
        }
        // x as its projection's bf16 output when the GEMM stored only that (a prefill's o_proj / down_proj).
        long xBf16 = cx.onlyOperand();
        long operand = co == null ? 0 : co.operandToWrite();
        // More rows than the GEMV takes: the GEMMs that read out take its bf16 copy, so its fp32 values (a
        // [8192, 5376] prefill: 176 MB, twice a layer) would be written for no reader.
        boolean copyOnly = operand != 0 && co.rows() > Gemm.GEMV_MAX_ROWS;
        if (cx.rows() > 0) {
            norms.addRmsNormNext(ch, cx, xBf16, cw, scalar, nw, copyOnly ? null : co, operand, eps);
        }
        if (co != null && co.operand() != null) {
            if (copyOnly) {
                co.operand().currentOnly();
            } else {
                co.operand().current(operand != 0);
            }
        }
    }

    @Override
    public void qkvNorm(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight, Weight kWeight,
                        float eps, Positions positions, float[] invFreq) {
        qkvNorm(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq, (QkvNormKernels.KvWrite) null);
    }

    /**
     * Stores K and V when the target is this backend's attention's ({@link PagedKvBuffers.Target}: the layer's
     * buffers through the step's block tables), in the same pass.
     */
    @Override
    public boolean qkvNorm(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight,
                           Weight kWeight, float eps, Positions positions, float[] invFreq,
                           io.jemma.attention.KvWriteTarget target) {
        if (!(target instanceof PagedKvBuffers.Target t) || mode == QkvNormMode.Q_ONLY || !FUSED_KV_WRITE) {
            qkvNorm(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq);
            return false;
        }
        int tokens = t.metadata().image()[AttentionMetadata.H_TOKENS];
        if (tokens != q.rows() || t.layer().headDim() != headDim || k.cols() != t.layer().kvHeads() * headDim) {
            throw new IllegalArgumentException("KV target of layer " + t.layer().layer() + " (" + tokens + " rows, "
                    + t.layer().kvHeads() + " x " + t.layer().headDim() + ") for k " + k + " at head dim " + headDim);
        }
        qkvNorm(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq, null, t.write());
        return true;
    }

    /** The fused QKV norm that also stores K and V into a bf16 paged cache (for the attention backend). */
    void qkvNorm(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight, Weight kWeight,
                 float eps, Positions positions, float[] invFreq, QkvNormKernels.KvWrite kv) {
        qkvNorm(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq, kv, null);
    }

    private void qkvNorm(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight,
                         Weight kWeight, float eps, Positions positions, float[] invFreq, QkvNormKernels.KvWrite kv,
                         QkvNormKernels.MetadataKvWrite meta) {
        context.enter();
        long[] in = bf16Inputs(mode, q, k, v, headDim, qWeight, kWeight);
        CudaTensor cq = CudaTensor.of(q).written();
        if (headDim <= 0 || headDim % 2 != 0 || headDim > 2048 || cq.cols() % headDim != 0) {
            throw new IllegalArgumentException("head dim " + headDim + " for q " + cq);
        }
        if (positions.size() != cq.rows() || invFreq.length != headDim / 2) {
            throw new IllegalArgumentException(positions.size() + " positions, " + invFreq.length
                    + " frequencies for " + cq.rows() + " tokens of head dim " + headDim);
        }
        CudaTensor ck = null;
        CudaTensor cv = null;
        CudaWeight kw = null;
        if (mode != QkvNormMode.Q_ONLY) {
            ck = CudaTensor.of(k).written();
            cv = CudaTensor.of(v).written();
            sameShape(ck, cv);
            if (ck.rows() != cq.rows() || ck.cols() % headDim != 0) {
                throw new IllegalArgumentException("k " + ck + " for q " + cq + " at head dim " + headDim);
            }
            kw = vector(kWeight, headDim);
        }
        if (kv != null && (mode == QkvNormMode.Q_ONLY || kv.slots().length != cq.rows())) {
            throw new IllegalArgumentException("KV write needs K and V and one slot per token");
        }
        int[] p = positions.values();
        long positionsAt = stepAddress(p, stepPositionsHost, stepPositions);
        boolean qOnlyBf16 = in != null && bf16Q && context.info().sm90a()
                && (headDim == 256 || (headDim == 512 && BF16_Q_HD512));
        qkvNorms.apply(mode, cq, ck, cv, headDim, vector(qWeight, headDim), kw, eps, p, invFreq, kv, meta, positionsAt,
                in, qOnlyBf16);
        if (qOnlyBf16) {
            cq.operand().currentOnly();        // q's values are only in its bf16 copy (attention reads or widens it)
        }
        if (in != null && (kv != null || meta != null) && ck != null) {
            // K and V went only to the cache (their fp32 results were not stored): nothing else may read them.
            ck.operand().spent();
            cv.operand().spent();
        }
    }

    /**
     * The bf16 copies of q, k and v (v's 0 in QK_EQ_V) when the GEMMs stored only those ({@link #allocateMatmulOutput})
     * and the bf16-input QKV norm takes the shape (it then reads them); else null, after widening any bf16-only one.
     * With a cache write it leaves k and v unwritten, so both must carry a copy to mark them spent.
     */
    private long[] bf16Inputs(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight,
                              Weight kWeight) {
        CudaTensor cq = CudaTensor.of(q);
        CudaTensor ck = mode == QkvNormMode.Q_ONLY ? null : CudaTensor.of(k);
        CudaTensor cv = mode == QkvNormMode.Q_ONLY ? null : CudaTensor.of(v);
        long qIn = cq.onlyOperand();
        long kIn = ck == null ? 0 : ck.onlyOperand();
        long vIn = mode == QkvNormMode.QKV ? cv.onlyOperand() : 0;
        boolean all = qIn != 0 && (ck == null || (kIn != 0 && cv.operand() != null && ck.operand() != null))
                && (mode != QkvNormMode.QKV || vIn != 0)
                && headDim > 0 && cq.cols() % headDim == 0
                && (ck == null || (ck.cols() % headDim == 0 && ck.cols() == cv.cols()))
                && QkvNormKernels.takesBf16(mode, cq, ck, cv, headDim, vector(qWeight, headDim),
                        kWeight == null || ck == null ? null : vector(kWeight, headDim));
        if (all) {
            return new long[] {qIn, kIn, vIn};
        }
        for (CudaTensor t : new CudaTensor[] {cq, ck, mode == QkvNormMode.QKV ? cv : null}) {
            if (t != null) {
                fp32(t);
            }
        }
        return null;
    }

    // ---- activations ----

    @Override
    public void geluTanhMul(Tensor gate, Tensor up, Tensor out) {
        context.enter();
        CudaTensor g = CudaTensor.of(gate);
        CudaTensor u = CudaTensor.of(up);
        CudaTensor o = CudaTensor.of(out).written();
        sameShape(g, u);
        sameShape(g, o);
        long operand = o.operandToWrite();
        if (activations.geluTanhMul(g, u, o, operand) && operand != 0) {
            o.operand().current(true);
        }
    }

    /**
     * Fused where {@link Gemm#gated} takes the shapes: at decode sizes, unless {@link #useGemvGelu} turned it off,
     * one GEMV launch that writes the activation (and out's bf16 copy when it has one); for a prefill into a tensor
     * with a bf16 copy, bf16 gate and up GEMM outputs and an activation pass that writes only that copy (out's fp32
     * memory is left as it was: the down projection reads the copy). Elsewhere the interface's unfused sequence.
     */
    @Override
    public void gatedMlpInput(Tensor x, Weight gate, Weight up, Tensor out) {
        context.enter();
        CudaTensor cx = CudaTensor.of(x);
        CudaTensor co = CudaTensor.of(out).written();
        CudaWeight g = CudaWeight.of(gate);
        CudaWeight u = CudaWeight.of(up);
        for (CudaWeight w : new CudaWeight[] {g, u}) {
            if (w.shape().length != 2 || w.dim(1) != cx.cols() || w.dim(0) != co.cols() || cx.rows() != co.rows()) {
                throw new IllegalArgumentException("gated MLP input " + cx + " x " + w + " -> " + co);
            }
        }
        if (cx.rows() == 0) {
            return;
        }
        long operand = co.operandToWrite();
        switch (gemm.gated(cx, g, u, co, operand)) {
            case FP32_AND_COPY -> {
                if (operand != 0) {
                    co.operand().current(true);
                }
            }
            case COPY_ONLY -> co.operand().currentOnly();
            case NOTHING -> Backend.super.gatedMlpInput(x, gate, up, out);
        }
    }

    @Override
    public void softcap(Tensor x, float cap) {
        context.enter();
        activations.softcap(CudaTensor.of(x).written(), cap);
    }

    // ---- mixture of experts ----

    /**
     * Routing, grouping by expert and the expert GEMMs all on the device ({@link MoeKernels}): no host
     * round trip, so decode steps with experts can be captured in a graph. The expert GEMMs round x and
     * the gelu products to bf16, like {@link #matmul}'s operands.
     */
    @Override
    public void mixtureOfExperts(Tensor x, Tensor routerLogits, int topK, Weight perExpertScale, Weight gateUp,
                                 Weight down, Tensor out) {
        context.enter();
        CudaTensor cx = CudaTensor.of(x);
        CudaTensor cl = CudaTensor.of(routerLogits);
        CudaTensor co = CudaTensor.of(out).written();
        CudaWeight gu = CudaWeight.of(gateUp);
        CudaWeight dn = CudaWeight.of(down);
        sameShape(cx, co);
        int experts = cl.cols();
        int hidden = cx.cols();
        if (cl.rows() != cx.rows() || experts < 1 || experts > MoeKernels.MAX_EXPERTS) {
            throw new IllegalArgumentException("router logits " + cl + " for x " + cx + " (at most "
                    + MoeKernels.MAX_EXPERTS + " experts)");
        }
        if (topK < 1 || topK > Math.min(experts, MoeKernels.MAX_TOP_K)) {
            throw new IllegalArgumentException("top k " + topK + " of " + experts + " experts (at most "
                    + MoeKernels.MAX_TOP_K + ")");
        }
        if (gu.shape().length != 3 || dn.shape().length != 3 || gu.dim(0) != experts || dn.dim(0) != experts
                || gu.dim(2) != hidden || dn.dim(1) != hidden || gu.dim(1) != 2 * dn.dim(2)) {
            throw new IllegalArgumentException("experts " + gu + ", " + dn + " for x " + cx + " and " + experts
                    + " experts");
        }
        long inter = dn.dim(2);
        if (hidden % 8 != 0 || inter % 8 != 0) {
            throw new IllegalArgumentException("expert kernels need hidden and intermediate sizes divisible by 8: "
                    + hidden + ", " + inter);
        }
        if (cx.rows() > 0) {
            moe.apply(cx, cl, topK, vector(perExpertScale, experts), gu, dn, co);
        }
    }

    /** Tests: the expert kernels, to force their GEMV / GEMM choice. */
    MoeKernels moe() {
        return moe;
    }

    // ---- steps, graphs and sampling ----

    /** Copies the step's per-row inputs to their fixed buffers (see {@link io.jemma.backend.Backend#beginStep}). */
    @Override
    public void beginStep(int[] ids, int[] positions, int[] logitRows) {
        context.enter();
        stepIds.write(ids);
        stepPositions.write(positions);
        stepRows.write(logitRows);
        stepIdsHost = ids.clone();
        stepPositionsHost = positions.clone();
        stepRowsHost = logitRows.clone();
    }

    /** The device address of the step's copy of {@code values} when they are the step's, else 0. */
    private static long stepAddress(int[] values, int[] step, StableInts buffer) {
        return step != null && Arrays.equals(values, step) ? buffer.address() : 0;
    }

    @Override
    public boolean supportsGraphs() {
        return true;
    }

    @Override
    public Graph captureGraph(Runnable work) {
        return capture(work);
    }

    @Override
    public boolean supportsArgmaxToStepIds() {
        return true;
    }

    /** sampling.cu's jemma_argmax_ids: one block per row, ties to the lowest index (as greedy sampling). */
    @Override
    public void argmaxToStepIds(Tensor logits, int rows, Tensor picked, int column) {
        context.enter();
        CudaTensor l = CudaTensor.of(logits);
        CudaTensor p = CudaTensor.of(picked);
        if (rows < 1 || rows > l.rows() || rows > p.rows() || column < 0 || column >= p.cols()
                || stepIdsHost == null || stepIdsHost.length < rows) {
            throw new IllegalArgumentException("argmax of " + rows + " rows of " + l + " into column " + column + " of "
                    + p + " and the step's " + (stepIdsHost == null ? 0 : stepIdsHost.length) + " ids");
        }
        context.launch("jemma_argmax_ids", rows, 1, 1, 1024, 0, new KernelArgs()
                .ptr(l.address()).i64(l.rowStride()).i32(l.cols()).ptr(stepIds.address())
                .ptr(p.address()).i32((int) p.rowStride()).i32(column));
    }

    /** On the device (see {@link CudaSampler}); rows it cannot do (over 32 top logprobs) on the host. */
    @Override
    public SampleResult sample(Tensor logits, SamplingBatch batch) {
        context.enter();
        CudaTensor l = CudaTensor.of(logits);
        if (batch.size() > l.rows()) {
            throw new IllegalArgumentException(batch.size() + " rows to sample from " + l);
        }
        if (!sampler.supports(batch)) {
            return io.jemma.backend.Backend.super.sample(logits, batch);
        }
        return sampler.sample(l, batch);
    }

    // ---- CUDA graphs ----

    /**
     * Records what {@code work} issues on the stream into a graph instead of running it (see
     * {@link CudaGraph} for what may be captured). Run {@code work} once eagerly first: lazily created
     * state (cuBLASLt plans, the GEMM operand buffer) should exist before capture.
     */
    public CudaGraph capture(Runnable work) {
        context.enter();
        return context.capture(work);
    }

    // ---- for tests and tools in this package ----

    CudaContext context() {
        return context;
    }

    /** Waits for all issued work (timing, tests). */
    /** Starts or stops the profiler's capture range (ncu --profile-from-start off): benchmarks only. */
    public void profiler(boolean on) {
        context.enter();
        Cu.check(on ? jcuda.driver.JCudaDriver.cuProfilerStart() : jcuda.driver.JCudaDriver.cuProfilerStop(),
                on ? "cuProfilerStart" : "cuProfilerStop");
    }

    public void synchronize() {
        context.enter();
        context.synchronize();
    }

    /** An uninitialized activation-pool buffer (tests: KV caches). */
    DeviceBuffer deviceBuffer(long bytes) {
        context.enter();
        return context.memory().allocate(bytes);
    }

    /** Reads {@code dst.byteSize()} bytes of a device buffer. */
    void read(DeviceBuffer src, MemorySegment dst) {
        context.enter();
        context.transfers().download(src, 0, dst);
    }

    /** Fills a whole float tensor with a bit pattern (tests poison outputs with NaN this way). */
    void fill(Tensor t, float value) {
        context.enter();
        CudaTensor c = CudaTensor.of(t).written();
        int bits = Float.floatToRawIntBits(value);
        if (c.contiguous()) {
            context.fill32(c.buffer(), c.byteOffset(), (long) c.rows() * c.cols(), bits);
            return;
        }
        for (int r = 0; r < c.rows(); r++) {
            context.fill32(c.buffer(), c.byteOffset() + (long) r * c.rowStride() * Float.BYTES, c.cols(), bits);
        }
    }

    @Override
    public void close() {
        context.enter();
        gemm.close();
        stepIds.close();
        stepPositions.close();
        stepRows.close();
        context.close();
    }

    private static CudaWeight vector(Weight w, int length) {
        CudaWeight c = CudaWeight.of(w);
        if (c.dtype() != DType.F32 || c.numel() != length) {
            throw new IllegalArgumentException("expected an fp32 vector of " + length + ", got " + c);
        }
        return c;
    }

    private static void sameShape(CudaTensor a, CudaTensor b) {
        if (a.rows() != b.rows() || a.cols() != b.cols()) {
            throw new IllegalArgumentException("shapes differ: " + a + " vs " + b);
        }
    }
}
