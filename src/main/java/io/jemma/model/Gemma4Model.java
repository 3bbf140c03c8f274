package io.jemma.model;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.attention.KvWriteTarget;
import io.jemma.attention.SequenceChunk;
import io.jemma.backend.Backend;
import io.jemma.backend.Positions;
import io.jemma.backend.QkvNormMode;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import io.jemma.engine.sampling.SampleResult;
import io.jemma.engine.sampling.SamplingBatch;
import io.jemma.model.config.AttentionType;
import io.jemma.model.config.LayerSpec;
import io.jemma.model.config.TextConfig;
import io.jemma.kv.KvCache;
import io.jemma.model.weights.Checkpoint;

import java.util.ArrayList;
import java.util.List;

/**
 * The Gemma 4 text decoder, written once over {@link Backend}: a forward pass takes any mix of prefill
 * chunks and decode tokens from several sequences (a {@link ForwardBatch}) and returns logits for the
 * rows asked for. Per-sequence keys and values live in the backend's attention cache between calls.
 */
public final class Gemma4Model implements AutoCloseable {

    private final TextConfig config;
    private final WeightSource source;
    private final Backend backend;
    private final Gemma4Weights weights;
    private final List<AttentionLayer> attentionLayers;
    private final AttentionBackend attention;
    private final KvCache kvCache;
    private final KvPages pages;
    private final float[][] inverseFrequencies; // per layer, [headDim / 2]
    private final float embeddingScale;
    private final float perLayerEmbeddingScale;
    /** The final-normed hidden states of the last forward's logit rows (valid until the next forward). */
    private Tensor lastHidden;
    private DecodeGraphs graphs;

    /**
     * Takes ownership of the checkpoint (the CPU backend computes on its mapped memory) and the backend.
     *
     * @param kv the KV memory to hold; sequences take pages of it through {@link #kvCache()}
     */
    public Gemma4Model(TextConfig config, Checkpoint checkpoint, Backend backend, KvGeometry kv) {
        this(config, WeightSource.of(checkpoint), backend, kv);
    }

    /** The same with weights from any source (a checkpoint, or dummy weights at the config's shapes). */
    public Gemma4Model(TextConfig config, WeightSource source, Backend backend, KvGeometry kv) {
        this.config = config;
        this.source = source;
        this.backend = backend;
        this.weights = Gemma4Weights.load(config, source, backend);
        this.attentionLayers = attentionLayers(config);
        this.inverseFrequencies = new float[config.numHiddenLayers()][];
        for (LayerSpec s : config.layers()) {
            inverseFrequencies[s.index()] = s.rope().inverseFrequencies(s.headDim());
        }
        this.attention = backend.attention(attentionLayers, kv, keysFromValues());
        this.kvCache = new KvCache(kv.pageSize(), kv.fullPages(), kv.slidingPages(),
                KvBudget.of(config, backend).slidingWindow());
        this.pages = kvCache;
        // transformers multiplies by a scale cast to the weight dtype: in bf16, sqrt(3072) becomes 55.5.
        this.embeddingScale = config.embeddingScale(weights.embedTokens().dtype());
        this.perLayerEmbeddingScale = config.hasPerLayerEmbeddings()
                ? config.perLayerEmbeddingScale(weights.embedTokensPerLayer().dtype()) : 0f;
    }

    public TextConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    public AttentionBackend attention() {
        return attention;
    }

    /** The token embedding table {@code [vocab, hidden]} (the assistant embeds its input tokens with it). */
    io.jemma.backend.Weight embedTokens() {
        return weights.embedTokens();
    }

    /** What token embeddings are multiplied by: {@code sqrt(hidden)} rounded to the table's dtype. */
    float embeddingScale() {
        return embeddingScale;
    }

    /** The model's KV pages: reserve a sequence here before its first forward. */
    public KvCache kvCache() {
        return kvCache;
    }

    /** Reserves KV memory for a sequence of up to maxLength positions, prefilled in one go. */
    public boolean startSequence(int sequenceId, int maxLength) {
        return kvCache.reserve(sequenceId, maxLength, maxLength);
    }

    /**
     * Replays decode steps of up to {@code maxRows} sequences from captured graphs (CUDA graphs), one per
     * batch-size bucket, when the backend supports them; a no-op otherwise. Prefill and mixed steps stay
     * eager.
     */
    public void useGraphs(int maxRows) {
        if (backend.supportsGraphs() && graphs == null && maxRows > 0) {
            graphs = new DecodeGraphs(this, maxRows);
        }
    }

    /**
     * The same, and speculative decoding's verify steps of {@code verifyTokens} rows per request (chains of
     * numDraftTokens) replay graphs too, as do the assistant's draft steps ({@link Gemma4Assistant}). May be
     * called again to widen the verify width.
     */
    public void useGraphs(int maxRows, int verifyTokens) {
        useGraphs(maxRows);
        if (graphs != null && verifyTokens > 1) {
            graphs.verifyTokens(verifyTokens);
        }
    }

    /** Whether decode steps replay graphs ({@link #useGraphs}). */
    public boolean graphsEnabled() {
        return graphs != null && graphs.enabled();
    }

    /** The recorded decode graph of the bucket holding {@code rows} rows, or null (benchmarks replay it alone). */
    public io.jemma.backend.Graph decodeGraph(int rows) {
        return graphs == null ? null : graphs.graph(rows);
    }

    /** The recorded verify graph for {@code requests} chains, or null (benchmarks replay it alone). */
    public io.jemma.backend.Graph verifyGraph(int requests) {
        return graphs == null ? null : graphs.verifyGraph(requests);
    }

    /** Drops every recorded graph; steps record again (benchmarks, after switching a kernel choice). */
    public void clearGraphs() {
        if (graphs != null) {
            graphs.clear();
        }
    }

    /** The attention layers, in layer order (benchmarks time attention alone). */
    public List<AttentionLayer> attentionLayers() {
        return attentionLayers;
    }

    /** Captures every bucket's graph now (engine warm-up) instead of at its first decode step. */
    public void captureGraphs() {
        if (graphs != null) {
            graphs.captureAll();
        }
    }

    /**
     * Runs the decoder over the batch's new tokens and returns the logits of the requested rows.
     *
     * @param ids       token ids, one per batch row {@code [tokens]}
     * @param logitRows batch rows whose logits are wanted (e.g. each sequence's last row)
     * @return {@code [logitRows.length * vocab]} fp32 logits, row after row
     */
    public float[] forward(ForwardBatch batch, int[] ids, int[] logitRows) {
        Tensor logits = logits(batch, ids, logitRows);
        float[] all = backend.toHost(logits);
        int n = logitRows.length * config.vocabSize();
        return all.length == n ? all : java.util.Arrays.copyOf(all, n);
    }

    /**
     * Runs the decoder and samples one token per requested row on the backend (on the GPU only the tokens,
     * and logprobs where asked, come back to the host).
     *
     * @param sampling one row per logit row, in the same order
     */
    public SampleResult forwardAndSample(ForwardBatch batch, int[] ids, int[] logitRows, SamplingBatch sampling) {
        if (sampling.size() != logitRows.length) {
            throw new IllegalArgumentException(sampling.size() + " sampling rows for " + logitRows.length + " logit rows");
        }
        Tensor logits = logits(batch, ids, logitRows);
        SampleResult all = backend.sample(logits, sampling.padded(logits.rows()));
        if (all.tokens().length == logitRows.length) {
            return all;
        }
        return new SampleResult(java.util.Arrays.copyOf(all.tokens(), logitRows.length),
                java.util.Arrays.copyOf(all.logprobs(), logitRows.length));
    }

    /**
     * The logits of the requested rows on the backend, {@code [rows, vocab]}, valid until the next forward.
     * A replayed decode graph pads the batch to its bucket: then there are more rows than requested and the
     * first {@code logitRows.length} are the requested ones.
     */
    public Tensor logits(ForwardBatch batch, int[] ids, int[] logitRows) {
        if (ids.length != batch.totalTokens()) {
            throw new IllegalArgumentException(ids.length + " ids for a batch of " + batch.totalTokens() + " rows");
        }
        if (graphs != null) {
            Tensor replayed = graphs.run(batch, ids, logitRows);
            if (replayed != null) {
                return replayed;
            }
        }
        int[] positions = batch.positions();
        prepare(batch, ids, positions, logitRows);
        Tensor logits = compute(batch, ids, positions, logitRows);
        finish(batch);
        return logits;
    }

    /**
     * A step's host side before any device work: activations released, KV pages taken for the new
     * positions, the attention metadata and the per-row inputs handed to the backend (a graph replays
     * with these).
     */
    void prepare(ForwardBatch batch, int[] ids, int[] positions, int[] logitRows) {
        backend.releaseActivations();
        for (SequenceChunk c : batch.chunks()) {
            kvCache.extend(c.sequenceId(), c.endPosition());
        }
        attention.beginStep(batch, pages);
        backend.beginStep(ids, positions, logitRows);
    }

    /**
     * The forward pass itself: backend operations only, no host bookkeeping, so that it can be captured
     * into a graph. Returns the logits {@code [logitRows.length, vocab]}.
     */
    Tensor compute(ForwardBatch batch, int[] ids, int[] positionValues, int[] logitRows) {
        int tokens = ids.length;
        Positions positions = new Positions(positionValues);
        Tensor h = backend.allocateScratch(tokens, config.hiddenSize());             // [tokens, hidden]
        backend.embed(weights.embedTokens(), ids, embeddingScale, h);
        Tensor perLayerInputs = config.hasPerLayerEmbeddings() ? perLayerInputs(ids, h) : null;
        // x: the input norm of the layer about to run; each layer's last residual step writes the next one's.
        Tensor x = backend.allocateMatmulInput(tokens, config.hiddenSize());      // [tokens, hidden]
        List<LayerSpec> layers = config.layers();
        if (!layers.isEmpty()) {
            backend.rmsNorm(h, weights.layers().get(layers.get(0).index()).inputNorm(), eps(), x);
        }
        for (int i = 0; i < layers.size(); i++) {
            LayerSpec spec = layers.get(i);
            Weight next = i + 1 < layers.size() ? weights.layers().get(layers.get(i + 1).index()).inputNorm() : null;
            long mark = backend.activationMark();                             // a layer's temporaries
            decoderLayer(spec, batch, positions, h, x, perLayerInputs, next);
            backend.releaseActivationsTo(mark);
        }
        Tensor last = backend.allocateScratch(logitRows.length, config.hiddenSize());  // [n, hidden]
        backend.gatherRows(h, logitRows, last);
        backend.rmsNorm(last, weights.finalNorm(), eps(), last);
        lastHidden = last;
        Tensor logits = backend.allocateScratch(logitRows.length, config.vocabSize()); // [n, vocab]
        backend.matmul(last, weights.lmHead(), logits);
        if (config.finalLogitSoftcapping().isPresent()) {
            backend.softcap(logits, (float) config.finalLogitSoftcapping().getAsDouble());
        }
        return logits;
    }

    /** After the step's device work was issued: sliding-window pages the sequences have left are freed. */
    void finish(ForwardBatch batch) {
        for (SequenceChunk c : batch.chunks()) {
            kvCache.written(c.sequenceId(), c.endPosition());
        }
    }

    /**
     * The final-normed hidden states of the last {@link #forward}'s logit rows, {@code [logitRows * hidden]}: what
     * a speculative-decoding assistant drafts from. Read it before the next forward.
     */
    public float[] lastHiddenStates() {
        if (lastHidden == null) {
            throw new IllegalStateException("no forward has run");
        }
        return backend.toHost(lastHidden);
    }

    /**
     * Rows of the final-normed hidden states of the last forward's logit rows, {@code [rows.length * hidden]}:
     * only what the next drafts start from comes to the host. Read it before the next forward.
     */
    public float[] hiddenRows(int[] rows) {
        if (lastHidden == null) {
            throw new IllegalStateException("no forward has run");
        }
        if (rows.length == 0) {
            return new float[0];
        }
        Tensor picked = backend.allocateScratch(rows.length, config.hiddenSize());   // [rows, hidden]
        backend.gatherRows(lastHidden, rows, picked);
        return backend.toHost(picked);
    }

    /** The last forward's hidden-state tensor (graphs keep the one each recording wrote). */
    Tensor lastHiddenTensor() {
        return lastHidden;
    }

    void lastHidden(Tensor hidden) {
        lastHidden = hidden;
    }

    /** The decode graphs when {@link #graphsEnabled}, else null (the assistant pads its graphs likewise). */
    DecodeGraphs graphs() {
        return graphsEnabled() ? graphs : null;
    }

    /** Frees a finished sequence's KV pages. */
    public void release(int sequenceId) {
        kvCache.release(sequenceId);
    }

    // Every activation of the forward pass is written whole before it is read (allocateScratch), except the
    // routed experts' output, which the CPU's implementation accumulates into.
    private void decoderLayer(LayerSpec s, ForwardBatch batch, Positions positions, Tensor h, Tensor x, Tensor ple,
                              Weight nextInputNorm) {
        decoderLayer(s, weights.layers().get(s.index()), attentionLayers.get(s.index()), inverseFrequencies[s.index()],
                config.hiddenSize(), eps(), batch, positions, h, x, ple, nextInputNorm);
    }

    /**
     * One decoder layer over {@code h [tokens, hidden]}, in place. Also runs the layers of a speculative-decoding
     * assistant ({@link Gemma4Assistant}): its own weights and width, attention through this model's backend and
     * KV pages (its layers read this model's KV and write none).
     */
    void decoderLayer(LayerSpec s, LayerWeights w, AttentionLayer attentionLayer, float[] invFreq, int hidden,
                      float eps, ForwardBatch batch, Positions positions, Tensor h, Tensor ple) {
        Tensor x = backend.allocateMatmulInput(batch.totalTokens(), hidden);             // [tokens, hidden]
        backend.rmsNorm(h, w.inputNorm(), eps, x);
        decoderLayer(s, w, attentionLayer, invFreq, hidden, eps, batch, positions, h, x, ple, null);
    }

    /**
     * The same with the layer's input norm already done: {@code x = rmsNorm(h) * inputNorm} on entry. The layer's
     * last residual step also writes {@code x = rmsNorm(h) * nextInputNorm} for the next layer when that is not
     * null (x is undefined on return otherwise).
     */
    void decoderLayer(LayerSpec s, LayerWeights w, AttentionLayer attentionLayer, float[] invFreq, int hidden,
                      float eps, ForwardBatch batch, Positions positions, Tensor h, Tensor x, Tensor ple,
                      Weight nextInputNorm) {
        int tokens = batch.totalTokens();

        // Attention block: h += norm(o(attention(norm(h)))). The projections' outputs are read only by the QKV norm
        // and the residual step (allocateMatmulOutput: a backend may store them narrower for those).
        Tensor q = backend.allocateMatmulOutput(tokens, s.numHeads() * s.headDim());     // [tokens, heads * hd]
        Tensor k = null;
        Tensor v = null;
        if (s.kvShared()) {
            backend.matmul(x, w.q(), q);
        } else {
            k = backend.allocateMatmulOutput(tokens, s.numKvHeads() * s.headDim());      // [tokens, kvHeads * hd]
            v = backend.allocateMatmulOutput(tokens, s.numKvHeads() * s.headDim());
            // One call for the projections of x (k_eq_v: v comes from k's output in the norm).
            if (s.kEqV()) {
                backend.matmul(x, new Weight[] {w.q(), w.k()}, new Tensor[] {q, k});
            } else {
                backend.matmul(x, new Weight[] {w.q(), w.k(), w.v()}, new Tensor[] {q, k, v});
            }
        }
        // The norm pass also stores the new K/V rows when the attention backend hands it a target for them.
        KvWriteTarget kvTarget = s.kvShared() ? null : attention.kvWriteTarget(attentionLayer, batch, pages);
        boolean stored = backend.qkvNorm(normMode(s), q, k, v, s.headDim(), w.qNorm(), w.kNorm(), eps, positions,
                invFreq, kvTarget);
        Tensor attended = backend.allocateMatmulInput(tokens, s.numHeads() * s.headDim()); // [tokens, heads * hd]
        attention.attend(attentionLayer, batch, pages, q, stored ? null : k, stored ? null : v, attended);
        Tensor o = backend.allocateMatmulOutput(tokens, hidden);
        backend.matmul(attended, w.o(), o);
        // h += norm(o), and x = the feed-forward block's input norm of the new h.
        backend.addRmsNorm(h, o, w.postAttentionNorm(), eps, 1f, w.preFeedforwardNorm(), x);

        // Feed-forward block: h += norm(mlp(norm(h)) [+ experts])
        // down's output is read only by the residual step unless the experts or the PLE block follow.
        Tensor mlp = feedForward(w.gate(), w.up(), w.down(), x, s.mlpWidth(),
                w.moe() == null && ple == null);                                          // [tokens, hidden]
        if (w.moe() != null) {
            mlp = withExperts(w.moe(), h, mlp);
        }
        // The layer's last residual step also applies the layer scalar and writes the next layer's input norm.
        if (ple == null) {
            backend.addRmsNorm(h, mlp, w.postFeedforwardNorm(), eps, w.layerScalar(), nextInputNorm, x);
            return;
        }
        backend.addRmsNorm(h, mlp, w.postFeedforwardNorm(), eps);

        // Per-layer input (E2B/E4B): h += norm(proj(gelu(gate(h)) * ple_i))
        int d = config.hiddenSizePerLayerInput();
        Tensor g = backend.allocateScratch(tokens, d);                                // [tokens, pleDim]
        backend.matmul(h, w.perLayerInput().gate(), g);
        backend.geluTanhMul(g, ple.columns(s.index() * d, d), g);
        Tensor p = backend.allocateScratch(tokens, hidden);
        backend.matmul(g, w.perLayerInput().projection(), p);
        backend.addRmsNorm(h, p, w.perLayerInput().postNorm(), eps, w.layerScalar(), nextInputNorm, x);
    }

    /** {@code down(gelu_tanh(gate(x)) * up(x))}: x {@code [tokens, hidden]} -> {@code [tokens, hidden]}. */
    private Tensor feedForward(io.jemma.backend.Weight gate, io.jemma.backend.Weight up,
                               io.jemma.backend.Weight down, Tensor x, int width, boolean toResidualStep) {
        int tokens = x.rows();
        Tensor g = backend.allocateMatmulInput(tokens, width);                // gelu's product goes to down
        backend.gatedMlpInput(x, gate, up, g);
        Tensor out = toResidualStep ? backend.allocateMatmulOutput(tokens, x.cols())
                : backend.allocateScratch(tokens, x.cols());
        backend.matmul(g, down, out);
        return out;
    }

    /**
     * The 26B-A4B block: the dense MLP output and the routed experts, each normalized, summed. The router
     * and the experts read the residual h from before the MLP.
     */
    private Tensor withExperts(LayerWeights.Moe m, Tensor h, Tensor dense) {
        int tokens = h.rows();
        int hidden = config.hiddenSize();
        float eps = eps();
        Tensor routed = backend.allocateScratch(tokens, hidden);                          // router input
        backend.rmsNorm(h, m.routerScale(), eps, routed);
        backend.scale(routed, (float) Math.pow(hidden, -0.5));
        Tensor routerLogits = backend.allocateScratch(tokens, config.numExperts().orElseThrow());       // [tokens, experts]
        backend.matmul(routed, m.routerProjection(), routerLogits);
        Tensor expertsIn = backend.allocateScratch(tokens, hidden);
        backend.rmsNorm(h, m.preFeedforwardNorm2(), eps, expertsIn);
        Tensor experts = backend.allocate(tokens, hidden);
        backend.mixtureOfExperts(expertsIn, routerLogits, config.topKExperts().orElseThrow(), m.perExpertScale(), m.gateUp(),
                m.down(), experts);
        Tensor combined = backend.allocateScratch(tokens, hidden);
        backend.rmsNorm(dense, m.postFeedforwardNorm1(), eps, combined);
        backend.addRmsNorm(combined, experts, m.postFeedforwardNorm2(), eps);
        return combined;
    }

    /**
     * PLE inputs for all layers, {@code [tokens, layers * pleDim]}:
     * {@code (norm(P(e) / sqrt(hidden)) * w + E_ple[id] * sqrt(pleDim)) / sqrt(2)} with e the scaled embedding.
     */
    private Tensor perLayerInputs(int[] ids, Tensor embedded) {
        int width = config.numHiddenLayers() * config.hiddenSizePerLayerInput();
        Tensor fromTokens = backend.allocateScratch(ids.length, width);
        backend.embed(weights.embedTokensPerLayer(), ids, perLayerEmbeddingScale, fromTokens);
        Tensor projected = backend.allocateScratch(ids.length, width);
        backend.matmul(embedded, weights.perLayerModelProjection(), projected);
        backend.scale(projected, (float) Math.pow(config.hiddenSize(), -0.5));
        backend.rmsNormGroups(projected, config.hiddenSizePerLayerInput(), weights.perLayerProjectionNorm(), eps(),
                projected);
        backend.add(projected, fromTokens);
        backend.scale(projected, (float) Math.pow(2.0, -0.5));
        return projected;
    }

    /**
     * The k_eq_v layers whose keys the backend derives from their cached values (K stored once), with the k_norm
     * weights and the frequencies their QKV norm uses; empty when the backend caches K.
     */
    private List<io.jemma.attention.KeysFromValues> keysFromValues() {
        List<io.jemma.attention.KeysFromValues> out = new ArrayList<>();
        if (backend.storesKEqVOnce()) {
            for (LayerSpec s : config.layers()) {
                if (s.kEqV() && !s.kvShared()) {
                    out.add(new io.jemma.attention.KeysFromValues(s.index(), weights.layers().get(s.index()).kNorm(),
                            inverseFrequencies[s.index()]));
                }
            }
        }
        return out;
    }

    private static QkvNormMode normMode(LayerSpec s) {
        if (s.kvShared()) {
            return QkvNormMode.Q_ONLY;
        }
        return s.kEqV() ? QkvNormMode.QK_EQ_V : QkvNormMode.QKV;
    }

    private static List<AttentionLayer> attentionLayers(TextConfig config) {
        List<AttentionLayer> out = new ArrayList<>();
        for (LayerSpec s : config.layers()) {
            int window = s.attentionType() == AttentionType.SLIDING ? s.slidingWindow() : 0;
            out.add(new AttentionLayer(s.index(), s.kvSourceLayer(), !s.kvShared(), s.numHeads(), s.numKvHeads(),
                    s.headDim(), window, 1.0f));
        }
        return List.copyOf(out);
    }

    private float eps() {
        return (float) config.rmsNormEps();
    }

    @Override
    public void close() {
        if (graphs != null) {
            graphs.close();
        }
        backend.close();
        source.close();
    }
}
