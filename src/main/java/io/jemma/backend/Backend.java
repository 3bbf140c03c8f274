package io.jemma.backend;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvWriteTarget;
import io.jemma.engine.sampling.HostSampling;
import io.jemma.engine.sampling.SampleResult;
import io.jemma.engine.sampling.SamplingBatch;

import java.util.List;

/**
 * The tensor operations the Gemma 4 forward pass is written in. The model calls these and nothing
 * else, so the CPU (Vector API) and CUDA backends run the same model code. Operations are named after
 * what they compute; all arithmetic is fp32 over weights of any {@link DType}. Shapes are given as
 * {@code [rows, cols]} of {@link Tensor}s; rows are tokens unless said otherwise.
 */
public interface Backend extends AutoCloseable {

    /** A short name for logs and metrics ("cpu", "cuda"). */
    String name();

    // ---- memory ----

    /** Takes a checkpoint tensor into the backend (the CPU keeps the mapping, CUDA copies it). */
    Weight load(HostTensor tensor);

    /**
     * A new zeroed tensor {@code [rows, cols]}, valid until the next {@link #releaseActivations()}.
     */
    Tensor allocate(int rows, int cols);

    /**
     * Like {@link #allocate}, with undefined contents: for a tensor an operation writes whole before anything
     * reads it (most of the forward pass's). Saves the fill (on the GPU a memset, a graph node each).
     */
    default Tensor allocateScratch(int rows, int cols) {
        return allocate(rows, cols);
    }

    /**
     * Like {@link #allocateScratch}, for a tensor that is written by {@link #rmsNorm}, {@link #addRmsNorm(Tensor,
     * Tensor, Weight, float, float, Weight, Tensor)} (as out) or {@link #geluTanhMul} (as out) and then read as
     * the x of {@link #matmul}: a backend whose GEMMs take a narrower operand (CUDA: bf16) may have the writer
     * store that operand alongside, so that the matmul skips its conversion pass. Any other op may write it too
     * (the backend then converts as usual).
     */
    default Tensor allocateMatmulInput(int rows, int cols) {
        return allocateScratch(rows, cols);
    }

    /**
     * Like {@link #allocateScratch}, for a projection's output: a tensor written by {@link #matmul} and then read only
     * by {@link #qkvNorm} (as q, k or v) or as the x of {@link #addRmsNorm(Tensor, Tensor, Weight, float, float,
     * Weight, Tensor)}. A backend whose GEMMs can store a narrower result (CUDA: bf16 at prefill sizes, as
     * transformers' bf16 projections) may do so there, for those readers to take.
     */
    default Tensor allocateMatmulOutput(int rows, int cols) {
        return allocateScratch(rows, cols);
    }

    /**
     * Every tensor allocated so far may be reused: the model calls this at the start of each forward,
     * so a step's activations come from memory the last step used instead of new garbage.
     */
    default void releaseActivations() {
    }

    /**
     * A position in the activation memory of the current forward: {@link #releaseActivationsTo} gives back
     * everything allocated after it (the model brackets each decoder layer, so a long prefill needs one
     * layer's temporaries, not all of them).
     */
    default long activationMark() {
        return 0;
    }

    /** Tensors allocated since {@code mark} may be reused (see {@link #activationMark()}). */
    default void releaseActivationsTo(long mark) {
    }

    /**
     * A weight generated from the shared dummy formula ({@link DummyWeights}) at the given checkpoint name
     * and shape, stored as {@code dtype} (sglang's --load-format dummy). A backend with its own memory
     * generates it there (CUDA: on the device, in milliseconds).
     */
    default Weight dummyWeight(String name, long[] shape, DType dtype, long seed) {
        return load(DummyWeights.host(name, shape, dtype, seed));
    }

    /** Copies a tensor's values to the heap, row-major {@code [rows * cols]}. */
    float[] toHost(Tensor t);

    /** A tensor holding the given host values {@code [rows, cols]}. */
    Tensor fromHost(float[] values, int rows, int cols);

    /** The attention implementation of this backend, with KV buffers of the given geometry. */
    AttentionBackend attention(List<AttentionLayer> layers, KvGeometry geometry);

    /** Bytes one cached key or value element takes in this backend's KV buffers. */
    int kvBytesPerElement();

    /**
     * Whether this backend caches only V in k_eq_v layers and derives K from it (jemma.kv-store-k-eq-v-once): their
     * keys then cost no KV memory ({@link io.jemma.model.KvBudget}); the model hands the layers' k_norm weights and
     * frequencies to {@link #attention(List, KvGeometry, List)}. False: K and V both cached.
     */
    default boolean storesKEqVOnce() {
        return false;
    }

    /**
     * The attention implementation, deriving the keys of the given k_eq_v layers from their values where
     * {@link #storesKEqVOnce()} (the geometry then sized for V only in them); other backends ignore the list.
     */
    default AttentionBackend attention(List<AttentionLayer> layers, KvGeometry geometry,
                                       List<io.jemma.attention.KeysFromValues> keysFromValues) {
        return attention(layers, geometry);
    }

    // ---- embeddings ----

    /** {@code out[t, :] = table[ids[t], :] * scale}; table {@code [vocab, cols]}. */
    void embed(Weight table, int[] ids, float scale, Tensor out);

    // ---- linear algebra ----

    /** {@code y = x @ w^T}: x {@code [tokens, in]}, w {@code [out, in]}, y {@code [tokens, out]}. */
    void matmul(Tensor x, Weight w, Tensor y);

    /**
     * {@code ys[i] = x @ ws[i]^T} for projections of the same input (q, k and v; gate and up). A backend
     * may do them together: the CUDA one reads x once (one GEMV launch at decode sizes, one bf16 operand
     * for the GEMMs of a prefill).
     */
    default void matmul(Tensor x, Weight[] ws, Tensor[] ys) {
        if (ws.length != ys.length) {
            throw new IllegalArgumentException(ws.length + " weights for " + ys.length + " outputs");
        }
        for (int i = 0; i < ws.length; i++) {
            matmul(x, ws[i], ys[i]);
        }
    }

    /** {@code y += x} elementwise. */
    void add(Tensor y, Tensor x);

    /** {@code y *= s} elementwise. */
    void scale(Tensor y, float s);

    /** {@code dst = src} (same shape; either may be a column view). */
    void copy(Tensor src, Tensor dst);

    /** Rows {@code rows[i]} of src into row i of dst. */
    void gatherRows(Tensor src, int[] rows, Tensor dst);

    // ---- normalization ----

    /** Per row: {@code out = x * (mean(x^2) + eps)^-0.5 * w} (w null: no weight). out may be x. */
    void rmsNorm(Tensor x, Weight w, float eps, Tensor out);

    /**
     * The same, per group of {@code groupWidth} columns (heads, or PLE layers): every
     * {@code [row, group]} is normalized on its own; w has {@code groupWidth} entries, or is null.
     */
    void rmsNormGroups(Tensor x, int groupWidth, Weight w, float eps, Tensor out);

    /** Fused norm + residual: {@code h += rmsNorm(x) * w}. */
    void addRmsNorm(Tensor h, Tensor x, Weight w, float eps);

    /**
     * The residual step between blocks, fused: {@code h = (h + rmsNorm(x) * w) * scalar}, then, when
     * {@code nextWeight} is not null, {@code out = rmsNorm(h) * nextWeight} (the next block's input norm; out
     * is not touched otherwise). h, x, out {@code [tokens, hidden]}, out distinct from h and x. This default
     * runs the unfused ops ({@code scalar == 1} skips the scale: multiplying by 1 changes nothing).
     */
    default void addRmsNorm(Tensor h, Tensor x, Weight w, float eps, float scalar, Weight nextWeight, Tensor out) {
        addRmsNorm(h, x, w, eps);
        if (scalar != 1f) {
            scale(h, scalar);
        }
        if (nextWeight != null) {
            rmsNorm(h, nextWeight, eps, out);
        }
    }

    /**
     * The fused Gemma QKV norm: per (token, head), rms-normalizes and weights q (and k), rotates them by
     * RoPE at the row's position, and normalizes v without a weight. See {@link QkvNormMode}; in
     * QK_EQ_V mode k holds the raw shared projection on entry and v is written from it.
     *
     * @param q       {@code [tokens, heads * headDim]}, in place
     * @param k       {@code [tokens, kvHeads * headDim]}, in place (unused in Q_ONLY)
     * @param v       {@code [tokens, kvHeads * headDim]}, in place (written in QK_EQ_V, unused in Q_ONLY)
     * @param invFreq RoPE inverse frequencies {@code [headDim / 2]} (zeros: no rotation)
     */
    void qkvNorm(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight, Weight kWeight,
                 float eps, Positions positions, float[] invFreq);

    /**
     * {@link #qkvNorm} that also stores the new K and V rows in the attention cache through {@code target}
     * (from {@link AttentionBackend#kvWriteTarget}; null: no store) when this backend can, in the same pass.
     *
     * @return whether K and V were stored (then attention is called with null k and v); this default stores
     *         nothing and returns false
     */
    default boolean qkvNorm(QkvNormMode mode, Tensor q, Tensor k, Tensor v, int headDim, Weight qWeight,
                            Weight kWeight, float eps, Positions positions, float[] invFreq, KvWriteTarget target) {
        qkvNorm(mode, q, k, v, headDim, qWeight, kWeight, eps, positions, invFreq);
        return false;
    }

    // ---- activations ----

    /** {@code out = gelu_tanh(gate) * up} elementwise. out may alias gate or up. */
    void geluTanhMul(Tensor gate, Tensor up, Tensor out);

    /**
     * The gated MLP's input to its down projection: {@code out = gelu_tanh(x @ gate^T) * (x @ up^T)}. x
     * {@code [tokens, hidden]}, gate and up {@code [width, hidden]}, out {@code [tokens, width]} from
     * {@link #allocateMatmulInput} and read afterwards only as the x of {@link #matmul}: a backend may fuse the
     * activation into the projections and keep out only in its GEMM operand form. This default runs the two
     * projections and {@link #geluTanhMul}.
     */
    default void gatedMlpInput(Tensor x, Weight gate, Weight up, Tensor out) {
        Tensor u = allocateScratch(x.rows(), out.cols());                     // [tokens, width]
        matmul(x, new Weight[] {gate, up}, new Tensor[] {out, u});
        geluTanhMul(out, u, out);
    }

    /** {@code x = cap * tanh(x / cap)}. */
    void softcap(Tensor x, float cap);

    // ---- mixture of experts ----

    /**
     * Routed experts (Gemma 4 MoE): per token, softmax over {@code routerLogits [tokens, experts]}, the
     * top k renormalized to sum 1 and scaled by {@code perExpertScale[e]}; then
     * {@code out = sum_k weight_k * down_e(gelu_tanh(g) * u)} with {@code [g, u] = gateUp_e(x)} split in halves.
     *
     * @param x      {@code [tokens, hidden]}
     * @param gateUp {@code [experts, 2 * inter, hidden]}
     * @param down   {@code [experts, hidden, inter]}
     * @param out    {@code [tokens, hidden]}
     */
    void mixtureOfExperts(Tensor x, Tensor routerLogits, int topK, Weight perExpertScale, Weight gateUp,
                          Weight down, Tensor out);

    // ---- steps, graphs and sampling ----

    /**
     * Called once per forward pass, before its first operation, with the step's per-row inputs. A GPU
     * backend copies them into buffers that keep their addresses, and operations of the step given equal
     * arrays (embed's ids, qkvNorm's positions, gatherRows' rows) read those instead of uploading their
     * own copies: what a replayed CUDA graph needs.
     */
    default void beginStep(int[] ids, int[] positions, int[] logitRows) {
    }

    /** Whether {@link #captureGraph} works on this backend. */
    default boolean supportsGraphs() {
        return false;
    }

    /**
     * Records the operations {@code work} issues into a {@link Graph} instead of running them. Run the
     * same work eagerly once first, so that lazily created state (GEMM plans, buffers) exists.
     */
    default Graph captureGraph(Runnable work) {
        throw new UnsupportedOperationException(name() + " backend: no graph capture");
    }

    /** Whether {@link #argmaxToStepIds} works on this backend. */
    default boolean supportsArgmaxToStepIds() {
        return false;
    }

    /**
     * Greedy drafting without the host: the index of the largest value of each of the first {@code rows} rows of
     * {@code logits [>= rows, vocab]} (ties to the lowest, as greedy sampling) becomes that row's id in the
     * step-input buffer {@link #beginStep} filled (which embed reads: the next step's input tokens) and is kept,
     * as int32 bits ({@link Float#floatToRawIntBits}), in column {@code column} of {@code picked [>= rows, cols]}.
     */
    default void argmaxToStepIds(Tensor logits, int rows, Tensor picked, int column) {
        throw new UnsupportedOperationException(name() + " backend: no argmax into the step's ids");
    }

    /**
     * Picks one token per row of {@code logits [rows, vocab]} (rows beyond the batch's are ignored): logprobs
     * of the raw logits when a row asks, then its penalties and end-token masks, then greedy or temperature
     * sampling with top-k, top-p and min-p. Only the tokens (and logprobs) come back to the host. This
     * default copies the logits to the host and uses the rows' own samplers ({@link HostSampling}).
     */
    default SampleResult sample(Tensor logits, SamplingBatch batch) {
        if (batch.size() > logits.rows()) {
            throw new IllegalArgumentException(batch.size() + " rows to sample from " + logits.rows() + " rows of logits");
        }
        return HostSampling.sample(toHost(logits), logits.cols(), batch);
    }

    @Override
    default void close() {
    }
}
