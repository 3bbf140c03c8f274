package io.jemma.model;

import io.jemma.attention.AttentionBackend;
import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.KvPages;
import io.jemma.attention.SequenceChunk;
import io.jemma.backend.Backend;
import io.jemma.backend.Positions;
import io.jemma.backend.QkvNormMode;
import io.jemma.backend.Tensor;
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
    private final Checkpoint checkpoint;
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

    /**
     * Takes ownership of the checkpoint (the CPU backend computes on its mapped memory) and the backend.
     *
     * @param kv the KV memory to hold; sequences take pages of it through {@link #kvCache()}
     */
    public Gemma4Model(TextConfig config, Checkpoint checkpoint, Backend backend, KvGeometry kv) {
        this.config = config;
        this.checkpoint = checkpoint;
        this.backend = backend;
        this.weights = Gemma4Weights.load(config, checkpoint, backend);
        this.attentionLayers = attentionLayers(config);
        this.attention = backend.attention(attentionLayers, kv);
        this.kvCache = new KvCache(kv.pageSize(), kv.fullPages(), kv.slidingPages(),
                new KvBudget(config, backend.kvBytesPerElement()).slidingWindow());
        this.pages = kvCache;
        this.inverseFrequencies = new float[config.numHiddenLayers()][];
        for (LayerSpec s : config.layers()) {
            inverseFrequencies[s.index()] = s.rope().inverseFrequencies(s.headDim());
        }
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
     * Runs the decoder over the batch's new tokens and returns the logits of the requested rows.
     *
     * @param ids       token ids, one per batch row {@code [tokens]}
     * @param logitRows batch rows whose logits are wanted (e.g. each sequence's last row)
     * @return {@code [logitRows.length * vocab]} fp32 logits, row after row
     */
    public float[] forward(ForwardBatch batch, int[] ids, int[] logitRows) {
        if (ids.length != batch.totalTokens()) {
            throw new IllegalArgumentException(ids.length + " ids for a batch of " + batch.totalTokens() + " rows");
        }
        int tokens = ids.length;
        backend.releaseActivations();
        for (SequenceChunk c : batch.chunks()) {
            kvCache.extend(c.sequenceId(), c.endPosition());
        }
        attention.beginStep(batch, pages);
        Positions positions = new Positions(batch.positions());
        Tensor h = backend.allocate(tokens, config.hiddenSize());             // [tokens, hidden]
        backend.embed(weights.embedTokens(), ids, embeddingScale, h);
        Tensor perLayerInputs = config.hasPerLayerEmbeddings() ? perLayerInputs(ids, h) : null;
        for (LayerSpec spec : config.layers()) {
            decoderLayer(spec, batch, positions, h, perLayerInputs);
        }
        for (SequenceChunk c : batch.chunks()) {
            kvCache.written(c.sequenceId(), c.endPosition());
        }
        Tensor last = backend.allocate(logitRows.length, config.hiddenSize());  // [n, hidden]
        backend.gatherRows(h, logitRows, last);
        backend.rmsNorm(last, weights.finalNorm(), eps(), last);
        lastHidden = last;
        Tensor logits = backend.allocate(logitRows.length, config.vocabSize()); // [n, vocab]
        backend.matmul(last, weights.lmHead(), logits);
        if (config.finalLogitSoftcapping().isPresent()) {
            backend.softcap(logits, (float) config.finalLogitSoftcapping().getAsDouble());
        }
        return backend.toHost(logits);
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

    /** Frees a finished sequence's KV pages. */
    public void release(int sequenceId) {
        kvCache.release(sequenceId);
    }

    private void decoderLayer(LayerSpec s, ForwardBatch batch, Positions positions, Tensor h, Tensor ple) {
        decoderLayer(s, weights.layers().get(s.index()), attentionLayers.get(s.index()), inverseFrequencies[s.index()],
                config.hiddenSize(), eps(), batch, positions, h, ple);
    }

    /**
     * One decoder layer over {@code h [tokens, hidden]}, in place. Also runs the layers of a speculative-decoding
     * assistant ({@link Gemma4Assistant}): its own weights and width, attention through this model's backend and
     * KV pages (its layers read this model's KV and write none).
     */
    void decoderLayer(LayerSpec s, LayerWeights w, AttentionLayer attentionLayer, float[] invFreq, int hidden,
                      float eps, ForwardBatch batch, Positions positions, Tensor h, Tensor ple) {
        int tokens = batch.totalTokens();

        // Attention block: h += norm(o(attention(norm(h))))
        Tensor x = backend.allocate(tokens, hidden);                              // [tokens, hidden]
        backend.rmsNorm(h, w.inputNorm(), eps, x);
        Tensor q = backend.allocate(tokens, s.numHeads() * s.headDim());          // [tokens, heads * hd]
        backend.matmul(x, w.q(), q);
        Tensor k = null;
        Tensor v = null;
        if (!s.kvShared()) {
            k = backend.allocate(tokens, s.numKvHeads() * s.headDim());           // [tokens, kvHeads * hd]
            v = backend.allocate(tokens, s.numKvHeads() * s.headDim());
            backend.matmul(x, w.k(), k);
            if (!s.kEqV()) {
                backend.matmul(x, w.v(), v);
            }
        }
        backend.qkvNorm(normMode(s), q, k, v, s.headDim(), w.qNorm(), w.kNorm(), eps, positions, invFreq);
        Tensor attended = backend.allocate(tokens, s.numHeads() * s.headDim());   // [tokens, heads * hd]
        attention.attend(attentionLayer, batch, pages, q, k, v, attended);
        Tensor o = backend.allocate(tokens, hidden);
        backend.matmul(attended, w.o(), o);
        backend.addRmsNorm(h, o, w.postAttentionNorm(), eps);

        // Feed-forward block: h += norm(mlp(norm(h)) [+ experts])
        backend.rmsNorm(h, w.preFeedforwardNorm(), eps, x);
        Tensor mlp = feedForward(w.gate(), w.up(), w.down(), x, s.mlpWidth());    // [tokens, hidden]
        if (w.moe() != null) {
            mlp = withExperts(w.moe(), h, mlp);
        }
        backend.addRmsNorm(h, mlp, w.postFeedforwardNorm(), eps);

        // Per-layer input (E2B/E4B): h += norm(proj(gelu(gate(h)) * ple_i))
        if (ple != null) {
            int d = config.hiddenSizePerLayerInput();
            Tensor g = backend.allocate(tokens, d);                                // [tokens, pleDim]
            backend.matmul(h, w.perLayerInput().gate(), g);
            backend.geluTanhMul(g, ple.columns(s.index() * d, d), g);
            Tensor p = backend.allocate(tokens, hidden);
            backend.matmul(g, w.perLayerInput().projection(), p);
            backend.addRmsNorm(h, p, w.perLayerInput().postNorm(), eps);
        }
        backend.scale(h, w.layerScalar());
    }

    /** {@code down(gelu_tanh(gate(x)) * up(x))}: x {@code [tokens, hidden]} -> {@code [tokens, hidden]}. */
    private Tensor feedForward(io.jemma.backend.Weight gate, io.jemma.backend.Weight up,
                               io.jemma.backend.Weight down, Tensor x, int width) {
        int tokens = x.rows();
        Tensor g = backend.allocate(tokens, width);
        Tensor u = backend.allocate(tokens, width);
        backend.matmul(x, gate, g);
        backend.matmul(x, up, u);
        backend.geluTanhMul(g, u, g);
        Tensor out = backend.allocate(tokens, x.cols());
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
        Tensor routed = backend.allocate(tokens, hidden);                          // router input
        backend.rmsNorm(h, m.routerScale(), eps, routed);
        backend.scale(routed, (float) Math.pow(hidden, -0.5));
        Tensor routerLogits = backend.allocate(tokens, config.numExperts().orElseThrow());       // [tokens, experts]
        backend.matmul(routed, m.routerProjection(), routerLogits);
        Tensor expertsIn = backend.allocate(tokens, hidden);
        backend.rmsNorm(h, m.preFeedforwardNorm2(), eps, expertsIn);
        Tensor experts = backend.allocate(tokens, hidden);
        backend.mixtureOfExperts(expertsIn, routerLogits, config.topKExperts().orElseThrow(), m.perExpertScale(), m.gateUp(),
                m.down(), experts);
        Tensor combined = backend.allocate(tokens, hidden);
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
        Tensor fromTokens = backend.allocate(ids.length, width);
        backend.embed(weights.embedTokensPerLayer(), ids, perLayerEmbeddingScale, fromTokens);
        Tensor projected = backend.allocate(ids.length, width);
        backend.matmul(embedded, weights.perLayerModelProjection(), projected);
        backend.scale(projected, (float) Math.pow(config.hiddenSize(), -0.5));
        backend.rmsNormGroups(projected, config.hiddenSizePerLayerInput(), weights.perLayerProjectionNorm(), eps(),
                projected);
        backend.add(projected, fromTokens);
        backend.scale(projected, (float) Math.pow(2.0, -0.5));
        return projected;
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
        backend.close();
        checkpoint.close();
    }
}
