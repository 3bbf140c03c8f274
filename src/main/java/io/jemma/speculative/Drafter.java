package io.jemma.speculative;

import io.jemma.engine.sampling.Sampler;
import io.jemma.model.Gemma4Assistant;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Drafts one round for a batch of sequences with the assistant: one assistant forward per draft step over every
 * sequence's open queries (a chain has one per step, a tree up to topk).
 *
 * <p>A chain follows the assistant's greedy token, or, when the request samples, a token drawn from its
 * filtered distribution (kept with the node for speculative sampling). A greedy chain's token is picked by the
 * backend, so its logits ({@code [vocab]} per query and step) need not leave the device. A tree (topk &gt; 1)
 * grows like sglang's EAGLE trees: each step expands the topk best open nodes by their topk most likely tokens, a
 * node scored by the product of its path's draft probabilities; the best {@code numDraftTokens - 1} nodes of all
 * steps form the tree.
 */
public final class Drafter implements DraftSource {

    private final Gemma4Assistant assistant;
    private final SpeculativeLimits limits;

    public Drafter(Gemma4Assistant assistant, SpeculativeLimits limits) {
        this.assistant = assistant;
        this.limits = limits;
    }

    public SpeculativeLimits limits() {
        return limits;
    }

    /**
     * One sequence to draft for.
     *
     * @param sequenceId   its KV slot in the target
     * @param cachedLength positions the target has cached (the last token's position)
     * @param lastToken    the last token the target sampled (the root)
     * @param hidden       the target's final-normed hidden state of the row that sampled it {@code [backbone]}
     * @param maxDepth     draft at most this many tokens (the request's remaining budget), at least 1
     * @param tree         grow a tree (topk &gt; 1); else a chain of up to {@code numSteps} tokens
     * @param sampler      the request's sampler when it samples (chains draw from it), null for greedy
     */
    public record Request(int sequenceId, int cachedLength, int lastToken, float[] hidden, int maxDepth, boolean tree,
                          Sampler sampler) {
    }

    /** An open query: a node whose children the next step drafts. */
    private static final class Node {
        final int request;
        final int token;
        final Node parent;
        final int depth;
        final double score;   // product of the draft probabilities along its path
        final float[] input;  // the h it is drafted from: its parent's projected state
        final float[] q;      // the distribution it was drawn from (sampled chains)
        final int order;      // creation order, for stable ties

        Node(int request, int token, Node parent, double score, float[] input, float[] q, int order) {
            this.request = request;
            this.token = token;
            this.parent = parent;
            this.depth = parent == null ? 0 : parent.depth + 1;
            this.score = score;
            this.input = input;
            this.q = q;
            this.order = order;
        }
    }

    /** Drafts for every request; the trees come back in the requests' order. */
    @Override
    public List<DraftTree> draft(List<Request> requests) {
        if (!requests.isEmpty() && assistant.greedyChainsOnDevice()
                && requests.stream().allMatch(q -> !q.tree() && q.sampler() == null)) {
            return greedyChains(requests);
        }
        int n = requests.size();
        List<List<Node>> open = new ArrayList<>(n);     // per request: the nodes the next step expands
        List<List<Node>> drafted = new ArrayList<>(n);  // per request: every drafted node
        int[] created = new int[n];
        for (int r = 0; r < n; r++) {
            Request q = requests.get(r);
            if (q.maxDepth() < 1 || q.hidden().length != assistant.config().backboneHiddenSize()) {
                throw new IllegalArgumentException("request " + r + ": depth " + q.maxDepth() + ", hidden of "
                        + q.hidden().length);
            }
            open.add(new ArrayList<>(List.of(new Node(r, q.lastToken(), null, 1.0, q.hidden(), null, created[r]++))));
            drafted.add(new ArrayList<>());
        }
        for (int step = 0; step < limits.numSteps(); step++) {
            List<Node> queries = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                Request q = requests.get(r);
                int depth = q.tree() ? limits.numSteps() : Math.min(limits.numSteps(), q.maxDepth());
                if (step < depth) {
                    queries.addAll(open.get(r));
                }
            }
            if (queries.isEmpty()) {
                break;
            }
            Gemma4Assistant.Step out = run(queries, requests);
            List<List<Node>> next = new ArrayList<>(n);
            for (int r = 0; r < n; r++) {
                next.add(new ArrayList<>());
            }
            for (int i = 0; i < queries.size(); i++) {
                Node node = queries.get(i);
                Request q = requests.get(node.request);
                float[] projected = out.projected(i);
                if (!q.tree()) {
                    Node child = chainChild(node, q, out, i, projected, created[node.request]++);
                    next.get(node.request).add(child);
                    drafted.get(node.request).add(child);
                } else {
                    float[] p = softmax(out.logits(), out.logitOffset(i), out.vocab());
                    for (int token : topK(p, limits.topK())) {
                        Node child = new Node(node.request, token, node, node.score * p[token], projected, null,
                                created[node.request]++);
                        next.get(node.request).add(child);
                        drafted.get(node.request).add(child);
                    }
                }
            }
            for (int r = 0; r < n; r++) {
                List<Node> candidates = next.get(r);
                if (requests.get(r).tree()) {
                    candidates.sort(BEST_FIRST);
                    open.set(r, new ArrayList<>(candidates.subList(0, Math.min(limits.topK(), candidates.size()))));
                } else {
                    open.set(r, candidates);
                }
            }
        }
        List<DraftTree> trees = new ArrayList<>(n);
        for (int r = 0; r < n; r++) {
            trees.add(build(requests.get(r), drafted.get(r)));
        }
        return trees;
    }

    /**
     * Every request a greedy chain: the assistant drafts them together on the device
     * ({@link Gemma4Assistant#draftGreedyChains}), every query for the longest depth, each chain cut to its own.
     */
    private List<DraftTree> greedyChains(List<Request> requests) {
        int n = requests.size();
        int backbone = assistant.config().backboneHiddenSize();
        int[] sequences = new int[n];
        int[] lengths = new int[n];
        int[] tokens = new int[n];
        float[] hidden = new float[n * backbone];
        int depth = 0;
        for (int r = 0; r < n; r++) {
            Request q = requests.get(r);
            if (q.maxDepth() < 1 || q.hidden().length != backbone) {
                throw new IllegalArgumentException("request " + r + ": depth " + q.maxDepth() + ", hidden of "
                        + q.hidden().length);
            }
            sequences[r] = q.sequenceId();
            lengths[r] = q.cachedLength();
            tokens[r] = q.lastToken();
            System.arraycopy(q.hidden(), 0, hidden, r * backbone, backbone);
            depth = Math.max(depth, Math.min(limits.numSteps(), q.maxDepth()));
        }
        int[][] drafted = assistant.draftGreedyChains(sequences, lengths, tokens, hidden, depth);
        List<DraftTree> trees = new ArrayList<>(n);
        for (int r = 0; r < n; r++) {
            Request q = requests.get(r);
            int d = Math.min(limits.numSteps(), q.maxDepth());
            trees.add(DraftTree.chain(q.lastToken(), Arrays.copyOf(drafted[r], d), null));
        }
        return trees;
    }

    private static Node chainChild(Node node, Request q, Gemma4Assistant.Step out, int row, float[] projected,
                                   int order) {
        if (q.sampler() == null) {
            int token = out.greedyToken(row);
            return new Node(node.request, token, node, node.score, projected, null, order);
        }
        float[] dist = q.sampler().distribution(out.logits(), out.logitOffset(row), out.vocab());
        int token = q.sampler().draw(dist);
        return new Node(node.request, token, node, node.score * dist[token], projected, dist, order);
    }

    /** One assistant step over the queries: node tokens drafted from their inputs, at the request's position. */
    private Gemma4Assistant.Step run(List<Node> queries, List<Request> requests) {
        int n = queries.size();
        int backbone = assistant.config().backboneHiddenSize();
        int[] sequences = new int[n];
        int[] lengths = new int[n];
        int[] tokens = new int[n];
        float[] hidden = new float[n * backbone];
        boolean[] greedyOnly = new boolean[n];
        for (int i = 0; i < n; i++) {
            Node node = queries.get(i);
            Request request = requests.get(node.request);
            sequences[i] = request.sequenceId();
            lengths[i] = request.cachedLength();
            tokens[i] = node.token;
            System.arraycopy(node.input, 0, hidden, i * backbone, backbone);
            // A greedy chain needs only the argmax; sampled chains keep their distribution, trees their top k.
            greedyOnly[i] = !request.tree() && request.sampler() == null;
        }
        return assistant.draft(sequences, lengths, tokens, hidden, greedyOnly);
    }

    /** The request's drafted nodes as a tree: a chain as drafted, a tree cut to its best nodes. */
    private DraftTree build(Request request, List<Node> nodes) {
        List<Node> kept;
        if (request.tree()) {
            List<Node> best = new ArrayList<>(nodes);
            best.sort(BEST_FIRST);
            kept = new ArrayList<>(best.subList(0, Math.min(limits.numDraftTokens() - 1, best.size())));
            kept.sort(Comparator.comparingInt((Node x) -> x.depth).thenComparing(BEST_FIRST));
        } else {
            kept = nodes;
        }
        int size = kept.size() + 1;
        int[] tokens = new int[size];
        int[] parents = new int[size];
        float[][] q = new float[size][];
        tokens[0] = request.lastToken();
        parents[0] = -1;
        for (int i = 0; i < kept.size(); i++) {
            Node node = kept.get(i);
            tokens[i + 1] = node.token;
            // A parent scores at least as high as its child and sits one level up: it was kept and placed before.
            parents[i + 1] = node.parent.parent == null ? 0 : kept.indexOf(node.parent) + 1;
            if (parents[i + 1] == 0 && node.parent.parent != null) {
                throw new IllegalStateException("draft tree lost the parent of node " + i);
            }
            q[i + 1] = node.q;
        }
        return new DraftTree(tokens, parents, q);
    }

    /** Higher score first; ties to the shallower, then the earlier node. */
    private static final Comparator<Node> BEST_FIRST = Comparator.comparingDouble((Node x) -> -x.score)
            .thenComparingInt(x -> x.depth).thenComparingInt(x -> x.order);

    private static float[] softmax(float[] logits, int offset, int vocab) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        double sum = 0;
        float[] p = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            p[i] = (float) Math.exp(logits[offset + i] - max);
            sum += p[i];
        }
        for (int i = 0; i < vocab; i++) {
            p[i] = (float) (p[i] / sum);
        }
        return p;
    }

    /** The k most likely tokens, most likely first (ties to the lower id). */
    static int[] topK(float[] p, int k) {
        int n = Math.min(k, p.length);
        int[] best = new int[n];
        Arrays.fill(best, -1);
        for (int t = 0; t < p.length; t++) {
            int at = n;
            while (at > 0 && (best[at - 1] < 0 || p[t] > p[best[at - 1]])) {
                at--;
            }
            if (at < n) {
                System.arraycopy(best, at, best, at + 1, n - at - 1);
                best[at] = t;
            }
        }
        return best;
    }
}
