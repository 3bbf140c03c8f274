package io.jemma.model;

import io.jemma.attention.ForwardBatch;
import io.jemma.attention.SequenceChunk;
import io.jemma.backend.Graph;
import io.jemma.backend.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Decode steps replayed from captured graphs (sglang's CUDA graph runner): one graph per batch-size bucket
 * (1, 2, 4, 8, then every 8 up to the engine's max running requests) holds the whole forward pass, every
 * layer and the attention included. A step of n decode tokens runs the bucket's graph for the smallest
 * bucket b >= n: the batch is padded with b - n rows of a padding sequence (its reservation of one page
 * per KV pool is held while graphs are on; the pages themselves are taken for a padded step and given
 * back after it, so an idle engine holds none; its rows write and read only that page), the per-row inputs
 * and attention metadata go to the backend's fixed buffers ({@link Gemma4Model#prepare}), and the graph
 * replays the recorded kernels on them.
 *
 * <p>Speculative decoding's verify steps replay graphs the same way ({@link #verifyTokens}): a step whose every
 * chunk is a chain of the same k tokens (k the verify width, no tree masks), all rows' logits wanted, is
 * padded to the bucket of its chunk count with padding chunks of k rows; such graphs are keyed by k too.
 *
 * <p>A bucket is recorded the first time a step needs it (or at warm-up, {@link #captureAll}): the step
 * runs eagerly (its result is the step's result; the run also creates GEMM plans and buffers), then the
 * same operations are recorded without running. Prefill and mixed steps, and batches of more rows than
 * the largest bucket, stay eager. If recording fails (an operation the backend cannot replay), graphs are
 * switched off with a warning and every step runs eagerly.
 */
final class DecodeGraphs implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(DecodeGraphs.class.getName());
    /** The padding rows' sequence (the engine's ids are >= 0; its warm-up uses -1). */
    static final int PAD_SEQUENCE = -2;

    private final Gemma4Model model;
    private final int[] buckets;
    /** Graphs by (bucket, the attention's launch key): a step replays only a graph of its own launch shape. */
    private final Map<GraphKey, Recorded> graphs = new HashMap<>();
    /** The latest graph of each bucket (benchmarks replay it alone). */
    private final TreeMap<Integer, Recorded> latest = new TreeMap<>();
    /** The same for verify steps, by chunk count. */
    private final TreeMap<Integer, Recorded> latestVerify = new TreeMap<>();
    private boolean enabled = true;

    /**
     * One bucket's graph, the tensor its logits land in, and where its activations end: after a replay
     * the backend's activation pointer is moved there, so that what the step allocates next (sampling's
     * buffers) does not overlap the graph's tensors.
     */
    private record Recorded(Graph graph, Tensor logits, Tensor hidden, long activationsEnd) {
    }

    /**
     * What a recorded graph is valid for: its bucket, and the attention's launch configuration
     * ({@code AttentionBackend.graphKey}: split counts grow with the context, so a long-context step records
     * its own graph instead of replaying one recorded at a short context).
     */
    private record GraphKey(int bucket, int tokensPerChunk, long attention) {
    }

    /** Tokens per chunk of verify steps (speculative decoding's draft tokens), or 1: decode steps only. */
    private int verifyTokens = 1;

    DecodeGraphs(Gemma4Model model, int maxRows) {
        this.model = model;
        this.buckets = buckets(maxRows);
        if (!model.kvCache().reserve(PAD_SEQUENCE, 1, 1)) {
            enabled = false;
            LOG.log(System.Logger.Level.WARNING, "no KV page left for the padding rows of decode graphs: decode steps run"
                    + " eagerly");
        }
    }

    /** 1, 2, 4, 8, 16, 24, ... up to the first bucket of at least {@code maxRows}. */
    static int[] buckets(int maxRows) {
        List<Integer> out = new ArrayList<>();
        for (int b = 1; ; b = b < 8 ? 2 * b : b + 8) {
            out.add(b);
            if (b >= maxRows) {
                break;
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    boolean enabled() {
        return enabled;
    }

    int[] buckets() {
        return buckets.clone();
    }

    /** The recorded graph of the bucket for {@code rows} rows, or null. */
    Graph graph(int rows) {
        if (rows < 1 || rows > buckets[buckets.length - 1]) {
            return null;
        }
        Recorded r = latest.get(bucket(rows));
        return r == null ? null : r.graph();
    }

    /**
     * Lets verify steps of {@code tokens} rows per chunk replay graphs too (speculative decoding's
     * numDraftTokens): the padding sequence's reservation grows to that many positions.
     */
    void verifyTokens(int tokens) {
        if (tokens <= verifyTokens) {
            return;
        }
        model.kvCache().release(PAD_SEQUENCE);
        if (model.kvCache().reserve(PAD_SEQUENCE, tokens, tokens)) {
            verifyTokens = tokens;
        } else if (!model.kvCache().reserve(PAD_SEQUENCE, 1, 1)) {
            enabled = false;
            LOG.log(System.Logger.Level.WARNING, "no KV page left for the padding rows of decode graphs: decode steps"
                    + " run eagerly");
        } else {
            LOG.log(System.Logger.Level.WARNING, "no KV room for padding verify chunks of " + tokens + " rows: verify"
                    + " steps run eagerly");
        }
    }

    /** The recorded verify graph of the bucket holding {@code chunks} verify chunks, or null (benchmarks). */
    Graph verifyGraph(int chunks) {
        int b = bucketFor(chunks);
        Recorded r = b < 0 ? null : latestVerify.get(b);
        return r == null ? null : r.graph();
    }

    /** Closes every recorded graph: steps record again (benchmarks, after changing how operations run). */
    void clear() {
        for (Recorded r : graphs.values()) {
            r.graph().close();
        }
        graphs.clear();
        latest.clear();
        latestVerify.clear();
    }

    /** The step's logits from a graph, or null when this step runs eagerly. */
    Tensor run(ForwardBatch batch, int[] ids, int[] logitRows) {
        int n = batch.chunks().size();
        int k = uniformChunkTokens(batch, logitRows);
        if (!enabled || n == 0 || k < 1 || (k != 1 && k != verifyTokens) || n > buckets[buckets.length - 1]) {
            return null;
        }
        int b = bucket(n);
        List<SequenceChunk> chunks = new ArrayList<>(batch.chunks());
        for (int r = n; r < b; r++) {
            chunks.add(new SequenceChunk(PAD_SEQUENCE, 0, k, r * k));
        }
        return step(new ForwardBatch(chunks, b * k), Arrays.copyOf(ids, b * k), k);
    }

    /** Records every bucket now, each with a batch of padding rows only (verify steps' too). */
    void captureAll() {
        for (int k : verifyTokens == 1 ? new int[] {1} : new int[] {1, verifyTokens}) {
            for (int b : buckets) {
                if (!enabled) {
                    return;
                }
                if (k == 1 && latest.containsKey(b) && latest.get(b).graph().valid()) {
                    continue;
                }
                List<SequenceChunk> chunks = new ArrayList<>();
                for (int r = 0; r < b; r++) {
                    chunks.add(new SequenceChunk(PAD_SEQUENCE, 0, k, r * k));
                }
                step(new ForwardBatch(chunks, b * k), new int[b * k], k);
            }
        }
    }

    private Tensor step(ForwardBatch padded, int[] ids, int tokensPerChunk) {
        try {
            return replayOrRecord(padded, ids, tokensPerChunk);
        } finally {
            model.kvCache().truncate(PAD_SEQUENCE, 0);      // the padding rows' pages go back at once
        }
    }

    private Tensor replayOrRecord(ForwardBatch padded, int[] ids, int tokensPerChunk) {
        int rowCount = padded.totalTokens();
        int b = padded.chunks().size();
        int[] rows = new int[rowCount];
        Arrays.setAll(rows, i -> i);
        int[] positions = padded.positions();
        model.prepare(padded, ids, positions, rows);
        GraphKey key = new GraphKey(b, tokensPerChunk, model.attention().graphKey());
        Recorded r = graphs.get(key);
        if (r != null && !r.graph().valid()) {
            r.graph().close();
            graphs.remove(key);
            latest.remove(b, r);
            latestVerify.remove(b, r);
            r = null;
        }
        Tensor logits;
        if (r != null) {
            model.backend().releaseActivationsTo(r.activationsEnd());
            r.graph().replay();
            logits = r.logits();
            model.lastHidden(r.hidden());    // the replay wrote the recorded tensors: the step's hidden states
        } else {
            logits = model.compute(padded, ids, positions, rows);   // this step's result, eagerly
            Tensor eagerHidden = model.lastHiddenTensor();
            record(key, padded, ids, positions, rows, model.backend().activationMark());
            model.lastHidden(eagerHidden);   // the recording's tensors hold nothing yet
        }
        model.finish(padded);
        return logits;
    }

    /**
     * Records the forward for the batch just prepared. Nothing runs, so the eager step's logits stay
     * intact although the recording reuses the same activation memory.
     */
    private void record(GraphKey key, ForwardBatch padded, int[] ids, int[] positions, int[] rows, long eagerEnd) {
        Tensor[] out = new Tensor[1];
        try {
            model.backend().releaseActivations();
            Graph g = model.backend().captureGraph(() -> out[0] = model.compute(padded, ids, positions, rows));
            long end = model.backend().activationMark();
            Recorded recorded = new Recorded(g, out[0], model.lastHiddenTensor(), end);
            graphs.put(key, recorded);
            (key.tokensPerChunk() == 1 ? latest : latestVerify).put(key.bucket(), recorded);
            model.backend().releaseActivationsTo(Math.max(end, eagerEnd));   // past the eager step's logits too
        } catch (RuntimeException e) {
            model.backend().releaseActivationsTo(eagerEnd);
            enabled = false;
            LOG.log(System.Logger.Level.WARNING, "recording a decode graph of " + padded.totalTokens()
                    + " rows failed; decode steps run eagerly from now on", e);
        }
    }

    /** The bucket for {@code n} rows (or queries), -1 when over the largest. */
    int bucketFor(int n) {
        return n < 1 || n > buckets[buckets.length - 1] ? -1 : bucket(n);
    }

    private int bucket(int n) {
        for (int b : buckets) {
            if (b >= n) {
                return b;
            }
        }
        throw new IllegalArgumentException(n + " rows exceed the largest bucket");
    }

    /**
     * The tokens every chunk has when they all have the same number k (1: decode; k > 1: chain verifies), in
     * row order, without tree masks, and the logits of every row in order are wanted; else -1.
     */
    private static int uniformChunkTokens(ForwardBatch batch, int[] logitRows) {
        if (logitRows.length != batch.totalTokens() || batch.chunks().isEmpty()) {
            return -1;
        }
        for (int i = 0; i < logitRows.length; i++) {
            if (logitRows[i] != i) {
                return -1;
            }
        }
        int k = batch.chunks().get(0).tokens();
        for (int i = 0; i < batch.chunks().size(); i++) {
            SequenceChunk c = batch.chunks().get(i);
            if (c.tokens() != k || c.firstRow() != i * k || c.tree() != null || c.sequenceId() == PAD_SEQUENCE) {
                return -1;
            }
        }
        return k;
    }

    @Override
    public void close() {
        for (Recorded r : graphs.values()) {
            r.graph().close();
        }
        graphs.clear();
        latest.clear();
        latestVerify.clear();
        model.kvCache().release(PAD_SEQUENCE);
    }
}
