package io.jemma.model;

import io.jemma.attention.AttentionLayer;
import io.jemma.attention.ForwardBatch;
import io.jemma.attention.SequenceChunk;
import io.jemma.backend.Backend;
import io.jemma.backend.Positions;
import io.jemma.backend.Tensor;
import io.jemma.backend.Weight;
import io.jemma.engine.sampling.Sampler;
import io.jemma.engine.sampling.SamplingBatch;
import io.jemma.model.config.AssistantConfig;
import io.jemma.model.config.LayerSpec;
import io.jemma.model.config.TextConfig;
import io.jemma.model.config.WeightNames;
import io.jemma.model.weights.Checkpoint;
import io.jemma.model.weights.CheckpointException;

import io.jemma.backend.Graph;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A Gemma 4 assistant (the MTP drafter, "frozen KV") bound to its target {@link Gemma4Model}: a small decoder
 * whose layers read the target's KV of its last sliding and last full layer and write none. One
 * {@link #draft} call is one draft step for any number of queries (sequences, or tree nodes of one sequence):
 * <pre>
 *   x = pre_projection(concat(target_embed(token) * sqrt(backbone), h))       [n, hidden]
 *   x = layers(x)    (query position t; KV of positions 0..t-1 of the target)
 *   y = norm(x)
 *   h' = post_projection(y)                                                  [n, backbone]
 *   logits = lm_head(y), or the centroid-masked head (use_ordered_embeddings) [n, vocab]
 * </pre>
 * The layers run through the target's own layer code and attention backend. As transformers'
 * {@code SinglePositionMultiTokenCandidateGenerator} does, every step of a round uses the position t of the
 * round's first input token (the last one the target sampled), and the KV of positions before it; the sliding
 * layers see the last {@code sliding_window + 1} of them (transformers' bidirectional window is inclusive).
 * sglang's worker differs in two details (RoPE position t - 1, a window of {@code sliding_window}); the golden
 * references pin transformers' reading.
 */
public final class Gemma4Assistant implements AutoCloseable {

    private final AssistantConfig config;
    private final Gemma4Model target;
    private final WeightSource source;
    private final Backend backend;
    private final List<LayerSpec> layers;
    private final List<LayerWeights> layerWeights;
    private final List<AttentionLayer> attentionLayers;
    private final float[][] inverseFrequencies;
    private final Weight preProjection;   // [hidden, 2 * backbone]
    private final Weight postProjection;  // [backbone, hidden]
    private final Weight finalNorm;       // [hidden]
    private final Weight lmHead;          // [vocab, hidden]
    private final Weight centroids;       // [numCentroids, hidden] (ordered head only)
    private final int[] tokenOrdering;    // [vocab]: cluster c holds tokens tokenOrdering[c * k .. c * k + k)
    /** Draft-step graphs by (query bucket, the attention's launch key), while the target replays graphs. */
    private final Map<GraphKey, StepGraph> graphs = new java.util.LinkedHashMap<>();   // latest last
    /** Set when recording a draft step failed: draft steps run eagerly from then on. */
    private boolean graphsFailed;
    private static final System.Logger LOG = System.getLogger(Gemma4Assistant.class.getName());

    private record GraphKey(int bucket, long attention) {
    }

    /**
     * A recorded draft step: its outputs, where its input h was allocated (the activation mark after it: a replay
     * is valid only when h sits at the same address) and where its activations end.
     */
    private record StepGraph(Graph graph, StepTensors out, long inputMark, long activationsEnd) {
    }

    /**
     * One step's device tensors: h {@code [b, backbone]} (the input state; the step leaves its projected state
     * there, the next chain step's input), logits {@code [b, vocab]}, projected {@code [b, backbone]}, centroid
     * scores {@code [b, centroids]} (ordered head only), the activation mark after h.
     */
    private record StepTensors(Tensor h, Tensor logits, Tensor projected, Tensor scores, long inputMark) {
    }

    /**
     * Loads an assistant checkpoint for {@code target}; takes ownership of the checkpoint. A
     * {@link io.jemma.model.config.ConfigException} says why the assistant does not fit the target.
     */
    public Gemma4Assistant(AssistantConfig config, Checkpoint checkpoint, Gemma4Model target) {
        this(config, WeightSource.of(checkpoint), target);
    }

    /**
     * The same with weights from any source: a checkpoint, or dummy weights at the assistant's shapes
     * ({@code WeightSource.dummy(config.decoder(), seed)}: the benchmarks' assistant; its integer tables are the
     * identity ordering). Takes ownership of the source.
     */
    public Gemma4Assistant(AssistantConfig config, WeightSource source, Gemma4Model target) {
        try {
            this.config = config;
        this.target = target;
        this.source = source;
        this.backend = target.backend();
        this.layers = config.layersFor(target.config());
        TextConfig decoder = config.decoder();
        var names = new WeightNames(decoder.tensorPrefix());
        var loader = new Gemma4Weights.Loader(source, backend);  // closed with the assistant
        long hidden = decoder.hiddenSize();
        long backbone = config.backboneHiddenSize();
        long vocab = decoder.vocabSize();
        this.preProjection = loader.get("pre_projection.weight", hidden, 2 * backbone);
        this.postProjection = loader.get("post_projection.weight", backbone, hidden);
        this.finalNorm = loader.get(names.finalNorm(), hidden);
        this.lmHead = decoder.tieWordEmbeddings() ? loader.get(names.embedTokens(), vocab, hidden)
                : loader.get(names.lmHead(), vocab, hidden);
        if (config.useOrderedEmbeddings()) {
            this.centroids = loader.get("masked_embedding.centroids.weight", config.numCentroids(), hidden);
            this.tokenOrdering = permutation(loader.integers("masked_embedding.token_ordering", vocab),
                    "masked_embedding.token_ordering");
        } else {
            this.centroids = null;
            this.tokenOrdering = null;
        }
        List<LayerWeights> w = new ArrayList<>();
        List<AttentionLayer> a = new ArrayList<>();
        this.inverseFrequencies = new float[layers.size()][];
        int first = target.config().numHiddenLayers();
        for (LayerSpec s : layers) {
            w.add(Gemma4Weights.layer(decoder, s, names, loader));
            // Layer ids after the target's; the KV is the target's source layer's, read only.
            int window = s.isSliding() ? s.slidingWindow() + 1 : 0;
            a.add(new AttentionLayer(first + s.index(), s.kvSourceLayer(), false, s.numHeads(), s.numKvHeads(),
                    s.headDim(), window, 1.0f));
            inverseFrequencies[s.index()] = s.inverseFrequencies();
        }
        this.layerWeights = List.copyOf(w);
        this.attentionLayers = List.copyOf(a);
        } catch (RuntimeException | Error e) {
            source.close();
            throw e;
        }
        // The sliding layers see sliding_window + 1 positions before t, two further back than the target's next
        // query: the target must keep them.
        if (target.kvCache().retainedBehindWindow() < RETAINED_BEHIND_WINDOW) {
            target.kvCache().retainBehindWindow(RETAINED_BEHIND_WINDOW);
        }
    }

    /** Positions behind the target's sliding window that drafting reads (see {@link #draft}). */
    public static final int RETAINED_BEHIND_WINDOW = 2;

    public AssistantConfig config() {
        return config;
    }

    /** The layers as bound to the target (which target layer's KV each reads). */
    public List<LayerSpec> layers() {
        return layers;
    }

    /**
     * What one draft step gives for each query.
     *
     * @param logits    the logits brought to the host, {@code [vocab]} per row in {@code logitRows}
     * @param logitRows per query, its row in {@link #logits()}, -1 when its logits stayed on the device; null:
     *                  every query's, in query order
     * @param picked    per query, its most likely token as the backend picked it on the device; null: none picked
     */
    public record Step(int rows, int vocab, int backbone, float[] logits, float[] projected, int[] logitRows,
                       int[] picked) {

        public Step(int rows, int vocab, int backbone, float[] logits, float[] projected) {
            this(rows, vocab, backbone, logits, projected, null, null);
        }

        /** Logits of query {@code i} start at this offset of {@link #logits()}. */
        public int logitOffset(int i) {
            int row = logitRows == null ? i : logitRows[i];
            if (row < 0) {
                throw new IllegalStateException("query " + i + ": its logits stayed on the device");
            }
            return row * vocab;
        }

        /** The most likely token of query {@code i} (ties to the lower id). */
        public int greedyToken(int i) {
            return picked != null ? picked[i] : Sampler.argmax(logits, logitOffset(i), vocab);
        }

        /** The projected state of query {@code i}, the next step's {@code h}. */
        public float[] projected(int i) {
            return Arrays.copyOfRange(projected, i * backbone, (i + 1) * backbone);
        }
    }

    /**
     * One draft step.
     *
     * @param sequenceIds   per query, the target sequence whose KV it reads (a sequence may appear several times)
     * @param cachedLengths per query, the positions the target has cached for that sequence, t: the query runs
     *                      at position t and sees positions {@code [0, t)}
     * @param tokens        per query, the input token (the target's last sampled token, then the draft's)
     * @param hidden        {@code [queries * backbone]}: the target's final-normed hidden state at t - 1, then the
     *                      previous step's projected state
     */
    public Step draft(int[] sequenceIds, int[] cachedLengths, int[] tokens, float[] hidden) {
        return draft(sequenceIds, cachedLengths, tokens, hidden, new boolean[tokens.length]);
    }

    /**
     * The same, where the queries marked {@code greedyOnly} need only their most likely token
     * ({@link Step#greedyToken}): the backend picks it on the device ({@link Backend#sample} with greedy rows), and
     * their logits ({@code [vocab]} floats each, 262,144 on the 31B) stay there. The centroid head masks on the
     * host, so with it every query's logits come to the host.
     */
    public Step draft(int[] sequenceIds, int[] cachedLengths, int[] tokens, float[] hidden, boolean[] greedyOnly) {
        int n = tokens.length;
        int backbone = config.backboneHiddenSize();
        if (sequenceIds.length != n || cachedLengths.length != n || hidden.length != n * backbone
                || greedyOnly.length != n) {
            throw new IllegalArgumentException(n + " tokens, " + sequenceIds.length + " sequences, "
                    + cachedLengths.length + " lengths, " + hidden.length + " hidden values (backbone " + backbone + ")");
        }
        for (int i = 0; i < n; i++) {
            if (cachedLengths[i] < 1) {
                throw new IllegalArgumentException("query " + i + ": the assistant needs at least one cached position");
            }
        }
        StepTensors out = step(sequenceIds, cachedLengths, tokens, hidden);
        Tensor logits = out.logits();
        Tensor projected = out.projected();
        int vocab = config.decoder().vocabSize();
        if (centroids != null) {
            float[] hostLogits = backend.toHost(logits);
            maskToTopCentroids(hostLogits, backend.toHost(out.scores()), n, vocab);
            return new Step(n, vocab, backbone, hostLogits, backend.toHost(projected));
        }
        int[] logitRows = new int[n];
        int[] hostRows = new int[n];
        int kept = 0;
        for (int i = 0; i < n; i++) {
            logitRows[i] = greedyOnly[i] ? -1 : kept;
            if (!greedyOnly[i]) {
                hostRows[kept++] = i;
            }
        }
        if (kept == n) {
            return new Step(n, vocab, backbone, backend.toHost(logits), backend.toHost(projected));
        }
        float[] hostLogits = new float[0];
        if (kept > 0) {
            Tensor wanted = backend.allocateScratch(kept, vocab);                     // [kept, vocab]
            backend.gatherRows(logits, Arrays.copyOf(hostRows, kept), wanted);
            hostLogits = backend.toHost(wanted);
        }
        // Greedy rows, ties to the lowest id on the CPU (the host's argmax) and on CUDA (sampling.cu's block
        // argmax): the same tokens as before. (The others' rows are read first: sampling may mask in place.)
        int[] picked = backend.sample(logits, SamplingBatch.greedy(n)).tokens();
        return new Step(n, vocab, backbone, hostLogits, backend.toHost(projected), logitRows, picked);
    }

    /** The latest recorded draft-step graph for {@code queries} queries, or null (benchmarks replay it alone). */
    public Graph draftGraph(int queries) {
        int b = bucket(queries);
        Graph latest = null;
        for (var e : graphs.entrySet()) {
            if (e.getKey().bucket() == b) {
                latest = e.getValue().graph();
            }
        }
        return latest;
    }

    /** Drops every recorded draft-step graph; steps record again (benchmarks, after switching a kernel choice). */
    public void clearGraphs() {
        graphs.values().forEach(g -> g.graph().close());
        graphs.clear();
    }

    /** Draft-step graphs recorded so far (0 while the target replays no graphs, or after recording failed). */
    public int draftGraphs() {
        return graphsFailed ? 0 : graphs.size();
    }

    /**
     * Whether {@link #draftGreedyChains} applies: the plain lm_head (the centroid head masks on the host, so its
     * greedy token is not the raw logits' argmax).
     */
    public boolean greedyChainsOnDevice() {
        return centroids == null;
    }

    /**
     * Greedy chains of {@code steps} tokens for every query, each step's token the argmax the backend picks on
     * the device. While the target replays graphs, every step replays a recorded graph, the projected state stays
     * on the device as the next step's input, and (where the backend offers {@link Backend#argmaxToStepIds}) so do
     * the picked tokens: the chain's tokens come back once, at its end. Otherwise each step's tokens and projected
     * state make the round trip through the host.
     *
     * @return per query, its {@code steps} drafted tokens
     */
    public int[][] draftGreedyChains(int[] sequenceIds, int[] cachedLengths, int[] tokens, float[] hidden, int steps) {
        if (!greedyChainsOnDevice()) {
            throw new IllegalStateException("the centroid head picks its greedy tokens on the host");
        }
        int n = tokens.length;
        int backbone = config.backboneHiddenSize();
        if (sequenceIds.length != n || cachedLengths.length != n || hidden.length != n * backbone || steps < 1) {
            throw new IllegalArgumentException(n + " tokens, " + sequenceIds.length + " sequences, "
                    + cachedLengths.length + " lengths, " + hidden.length + " hidden values, " + steps + " steps");
        }
        for (int i = 0; i < n; i++) {
            if (cachedLengths[i] < 1) {
                throw new IllegalArgumentException("query " + i + ": the assistant needs at least one cached position");
            }
        }
        if (target.graphs() != null && !graphsFailed && backend.supportsArgmaxToStepIds()) {
            int[][] chained = deviceChain(sequenceIds, cachedLengths, tokens, hidden, steps);
            if (chained != null) {
                return chained;
            }
        }
        int[][] out = new int[n][steps];
        int[] current = tokens.clone();
        float[] h = hidden;
        boolean onDevice = false;     // the previous step left the next h in the input tensor
        long inputMark = -1;
        for (int step = 0; step < steps; step++) {
            StepTensors t = step(sequenceIds, cachedLengths, current, onDevice ? null : h);
            if (onDevice && t.inputMark() != inputMark) {
                throw new IllegalStateException("the draft step's input moved between steps");
            }
            inputMark = t.inputMark();
            current = Arrays.copyOf(backend.sample(t.logits(), SamplingBatch.greedy(n)).tokens(), n);
            for (int i = 0; i < n; i++) {
                out[i][step] = current[i];
            }
            // While graphs replay, the arena gives the input tensor the same address every step.
            onDevice = target.graphs() != null && !graphsFailed;
            if (!onDevice && step + 1 < steps) {
                h = Arrays.copyOf(backend.toHost(t.projected()), n * backbone);
            }
        }
        return out;
    }

    /**
     * One draft step on the backend, padded to the target's graph bucket and replayed from a recorded graph while
     * the target replays graphs (recorded the first time, after the step ran eagerly), eager otherwise.
     *
     * @param hidden {@code [n * backbone]}, or null: h is what the previous step left in the input tensor (on a
     *               backend whose activation arena gives the step's first activation the same address every step,
     *               which the caller checks with {@link StepTensors#inputMark})
     */
    private StepTensors step(int[] sequenceIds, int[] cachedLengths, int[] tokens, float[] hidden) {
        int b = bucket(tokens.length);
        if (b > tokens.length) {
            target.kvCache().extend(DecodeGraphs.PAD_SEQUENCE, 1);
        }
        try {
            return run(prepare(sequenceIds, cachedLengths, tokens, hidden, b));
        } finally {
            if (b > tokens.length) {
                target.kvCache().truncate(DecodeGraphs.PAD_SEQUENCE, 0);
            }
        }
    }

    /** The queries' padded count while draft steps replay graphs, else their count. */
    private int bucket(int n) {
        DecodeGraphs decodeGraphs = target.graphs();
        int b = decodeGraphs == null || graphsFailed ? -1 : decodeGraphs.bucketFor(n);
        return b > 0 ? b : n;
    }

    /** A draft step's host side done: its padded batch and inputs, the input state h allocated first. */
    private record Prepared(ForwardBatch batch, int[] ids, int[] positions, Tensor h, long inputMark, boolean graphed) {
    }

    /**
     * The host side of a step of {@code b >= n} queries (the padding ones read position 0 of the padding sequence,
     * whose page the caller took): activations released, the attention metadata and the step's inputs handed to
     * the backend, h allocated (uploaded, or left as the previous step wrote it when {@code hidden} is null).
     */
    private Prepared prepare(int[] sequenceIds, int[] cachedLengths, int[] tokens, float[] hidden, int b) {
        int n = tokens.length;
        int backbone = config.backboneHiddenSize();
        // As attention sees it, a query is a decode at t - 1 that writes nothing: it sees the cached positions up
        // to t - 1, the last window of them in sliding layers. RoPE uses t itself.
        List<SequenceChunk> chunks = new ArrayList<>(b);
        int[] positions = new int[b];
        int[] ids = Arrays.copyOf(tokens, b);
        for (int i = 0; i < b; i++) {
            boolean pad = i >= n;
            chunks.add(new SequenceChunk(pad ? DecodeGraphs.PAD_SEQUENCE : sequenceIds[i], pad ? 0 : cachedLengths[i] - 1,
                    1, i));
            positions[i] = pad ? 1 : cachedLengths[i];
        }
        ForwardBatch batch = new ForwardBatch(chunks, b);
        backend.releaseActivations();
        target.attention().beginStep(batch, target.kvCache());
        int[] rows = new int[b];
        Arrays.setAll(rows, i -> i);
        backend.beginStep(ids, positions, rows);
        Tensor h = hidden != null ? backend.fromHost(Arrays.copyOf(hidden, b * backbone), b, backbone)
                : backend.allocateScratch(b, backbone);                                  // [b, backbone]
        DecodeGraphs decodeGraphs = target.graphs();
        boolean graphed = decodeGraphs != null && !graphsFailed && decodeGraphs.bucketFor(n) == b;
        return new Prepared(batch, ids, positions, h, backend.activationMark(), graphed);
    }

    /** Runs a prepared step: a graph's replay, or eagerly (then recorded when graphs are on). */
    private StepTensors run(Prepared p) {
        if (!p.graphed()) {
            return compute(p.batch(), p.ids(), p.positions(), p.h(), p.inputMark());
        }
        GraphKey key = new GraphKey(p.ids().length, target.attention().graphKey());
        StepGraph g = graphs.get(key);
        if (g != null && (!g.graph().valid() || g.inputMark() != p.inputMark())) {
            g.graph().close();
            graphs.remove(key);
            g = null;
        }
        if (g != null) {
            backend.releaseActivationsTo(g.activationsEnd());
            g.graph().replay();
            return g.out();
        }
        StepTensors eager = compute(p.batch(), p.ids(), p.positions(), p.h(), p.inputMark());  // this step's result
        long eagerEnd = backend.activationMark();
        StepTensors[] recorded = new StepTensors[1];
        try {
            backend.releaseActivationsTo(p.inputMark());
            Graph graph = backend.captureGraph(() -> recorded[0] = compute(p.batch(), p.ids(), p.positions(), p.h(),
                    p.inputMark()));
            long end = backend.activationMark();
            graphs.put(key, new StepGraph(graph, recorded[0], p.inputMark(), end));
            backend.releaseActivationsTo(Math.max(end, eagerEnd));   // past the eager step's outputs too
        } catch (RuntimeException e) {
            backend.releaseActivationsTo(eagerEnd);
            graphsFailed = true;
            LOG.log(System.Logger.Level.WARNING, "recording a draft step of " + p.ids().length + " queries failed;"
                    + " the assistant's draft steps run eagerly from now on", e);
        }
        return eager;
    }

    /**
     * A greedy chain with no host work between its steps: one preparation, then per step a graph replay (the
     * projected state stays in h) and the backend's argmax written straight into the step's input ids
     * ({@link Backend#argmaxToStepIds}) and into column {@code step} of the picked tokens, read once at the end.
     * The attention metadata and positions stay those of the first step (every step of a round queries the same
     * positions). Null when a step could not replay a graph (recording failed): the caller drafts step by step.
     */
    private int[][] deviceChain(int[] sequenceIds, int[] cachedLengths, int[] tokens, float[] hidden, int steps) {
        int n = tokens.length;
        int b = bucket(n);
        if (b > n) {
            target.kvCache().extend(DecodeGraphs.PAD_SEQUENCE, 1);
        }
        try {
            Prepared p = prepare(sequenceIds, cachedLengths, tokens, hidden, b);
            StepTensors first = run(p);      // replayed, or eager and recorded
            GraphKey key = new GraphKey(b, target.attention().graphKey());
            StepGraph g = graphs.get(key);
            if (graphsFailed || g == null) {
                return null;
            }
            Tensor picked = backend.allocateScratch(b, steps);                       // [b, steps] int32 bits
            backend.argmaxToStepIds(first.logits(), b, picked, 0);
            for (int step = 1; step < steps; step++) {
                g.graph().replay();
                backend.argmaxToStepIds(g.out().logits(), b, picked, step);
            }
            float[] bits = backend.toHost(picked);
            int[][] out = new int[n][steps];
            for (int i = 0; i < n; i++) {
                for (int step = 0; step < steps; step++) {
                    out[i][step] = Float.floatToRawIntBits(bits[i * steps + step]);
                }
            }
            return out;
        } finally {
            if (b > n) {
                target.kvCache().truncate(DecodeGraphs.PAD_SEQUENCE, 0);
            }
        }
    }

    /**
     * The step's device work (capturable: no host bookkeeping): pre-projection of the embedded token and h, the
     * layers, the final norm, projected state and logits (and centroid scores); the projected state is copied
     * into h at the end, the next chain step's input.
     */
    private StepTensors compute(ForwardBatch batch, int[] ids, int[] positions, Tensor h, long inputMark) {
        TextConfig decoder = config.decoder();
        int b = ids.length;
        int width = decoder.hiddenSize();
        int backbone = config.backboneHiddenSize();
        float eps = (float) decoder.rmsNormEps();
        Tensor in = backend.allocateScratch(b, 2 * backbone);                         // [b, 2 * backbone]
        backend.embed(target.embedTokens(), ids, target.embeddingScale(), in.columns(0, backbone));
        backend.copy(h, in.columns(backbone, backbone));
        Tensor x = backend.allocateScratch(b, width);                                 // [b, hidden]
        backend.matmul(in, preProjection, x);
        Positions pos = new Positions(positions);
        for (LayerSpec s : layers) {
            target.decoderLayer(s, layerWeights.get(s.index()), attentionLayers.get(s.index()),
                    inverseFrequencies[s.index()], width, eps, batch, pos, x, null);
        }
        backend.rmsNorm(x, finalNorm, eps, x);
        Tensor projected = backend.allocateScratch(b, backbone);                      // [b, backbone]
        backend.matmul(x, postProjection, projected);
        Tensor logits = backend.allocateScratch(b, decoder.vocabSize());              // [b, vocab]
        backend.matmul(x, lmHead, logits);
        Tensor scores = null;
        if (centroids != null) {
            scores = backend.allocateScratch(b, config.numCentroids());               // [b, centroids]
            backend.matmul(x, centroids, scores);
        }
        backend.copy(projected, h);
        return new StepTensors(h, logits, projected, scores, inputMark);
    }

    /**
     * The centroid head: only the tokens of each row's {@code centroid_intermediate_top_k} best clusters keep their
     * logits; every other token gets the row's smallest kept logit minus 1. transformers takes that minimum over
     * the whole call; per row is the same for one query and does not make a row depend on its batch.
     */
    private void maskToTopCentroids(float[] logits, float[] scores, int n, int vocab) {
        int clusters = config.numCentroids();
        int k = config.tokensPerCentroid();
        int top = config.centroidTopK();
        boolean[] keep = new boolean[vocab];
        for (int r = 0; r < n; r++) {
            Arrays.fill(keep, false);
            float min = Float.POSITIVE_INFINITY;
            int base = r * vocab;
            for (int c : topIndices(scores, r * clusters, clusters, top)) {
                for (int j = 0; j < k; j++) {
                    int token = tokenOrdering[c * k + j];
                    keep[token] = true;
                    min = Math.min(min, logits[base + token]);
                }
            }
            float masked = min - 1f;
            for (int t = 0; t < vocab; t++) {
                if (!keep[t]) {
                    logits[base + t] = masked;
                }
            }
        }
    }

    /** Indices of the {@code k} largest of {@code values[offset, offset + n)}, ties to the lower index. */
    static int[] topIndices(float[] values, int offset, int n, int k) {
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> {
            int c = Float.compare(values[offset + b], values[offset + a]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        int[] out = new int[k];
        for (int i = 0; i < k; i++) {
            out[i] = order[i];
        }
        return out;
    }

    private int[] permutation(long[] values, String name) {
        int[] out = new int[values.length];
        boolean[] seen = new boolean[values.length];
        for (int i = 0; i < values.length; i++) {
            long v = values[i];
            if (v < 0 || v >= values.length || seen[(int) v]) {
                throw new CheckpointException(source + ": " + name + " is not a permutation of the vocabulary ("
                        + "entry " + i + " is " + v + ")");
            }
            seen[(int) v] = true;
            out[i] = (int) v;
        }
        return out;
    }

    @Override
    public void close() {
        clearGraphs();
        source.close();
    }
}
