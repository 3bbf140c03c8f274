package io.jemma.speculative;

import io.jemma.attention.TreeMask;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One sequence's draft for a round, as the target verifies it: node 0 is the root (the last token the target
 * sampled, not yet in its KV cache), every other node a drafted token. Parents come before their children, so
 * the nodes in order are the verify chunk's rows (a causal run when the draft is a chain, else a
 * {@link TreeMask}); children are listed most likely first.
 *
 * @param tokens       per node, its token
 * @param parents      per node, its parent's index (-1 for the root)
 * @param distributions per node, the draft distribution its token was drawn from (speculative sampling of a
 *                     chain), or null when it was chosen (greedy, top-k)
 */
public record DraftTree(int[] tokens, int[] parents, float[][] distributions) {

    public DraftTree {
        if (tokens.length == 0 || tokens.length != parents.length || distributions.length != tokens.length
                || parents[0] != -1) {
            throw new IllegalArgumentException("a draft of " + tokens.length + " tokens, " + parents.length
                    + " parents, " + distributions.length + " distributions");
        }
        for (int i = 1; i < parents.length; i++) {
            if (parents[i] < 0 || parents[i] >= i) {
                throw new IllegalArgumentException("node " + i + " has parent " + parents[i] + " (parents come first)");
            }
        }
        tokens = tokens.clone();
        parents = parents.clone();
        distributions = distributions.clone();
    }

    /** A chain: the root, then drafted tokens each following the one before. */
    public static DraftTree chain(int root, int[] drafted, float[][] distributions) {
        int n = drafted.length + 1;
        int[] tokens = new int[n];
        int[] parents = new int[n];
        float[][] q = new float[n][];
        tokens[0] = root;
        parents[0] = -1;
        for (int i = 1; i < n; i++) {
            tokens[i] = drafted[i - 1];
            parents[i] = i - 1;
            q[i] = distributions == null ? null : distributions[i - 1];
        }
        return new DraftTree(tokens, parents, q);
    }

    public int size() {
        return tokens.length;
    }

    public int token(int node) {
        return tokens[node];
    }

    public int parent(int node) {
        return parents[node];
    }

    /** The draft distribution node's token was drawn from, or null. */
    public float[] distribution(int node) {
        return distributions[node];
    }

    @Override
    public int[] tokens() {
        return tokens.clone();
    }

    @Override
    public int[] parents() {
        return parents.clone();
    }

    public int depth(int node) {
        int d = 0;
        for (int n = node; parents[n] >= 0; n = parents[n]) {
            d++;
        }
        return d;
    }

    /** The deepest node's depth: how many drafted tokens the best case accepts. */
    public int maxDepth() {
        int max = 0;
        for (int i = 0; i < size(); i++) {
            max = Math.max(max, depth(i));
        }
        return max;
    }

    /** Node's children, in the order they were listed (most likely first). */
    public int[] children(int node) {
        List<Integer> out = new ArrayList<>();
        for (int i = node + 1; i < size(); i++) {
            if (parents[i] == node) {
                out.add(i);
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Whether every node is the child of the one before: the verify chunk is a plain causal run. */
    public boolean isChain() {
        for (int i = 1; i < size(); i++) {
            if (parents[i] != i - 1) {
                return false;
            }
        }
        return true;
    }

    /** The verify chunk's attention mask: each node sees its ancestors and itself. */
    public TreeMask mask() {
        int n = size();
        int[] depth = new int[n];
        long[] visible = new long[n];
        for (int i = 0; i < n; i++) {
            depth[i] = i == 0 ? 0 : depth[parents[i]] + 1;
            visible[i] = (i == 0 ? 0 : visible[parents[i]]) | (1L << i);
        }
        return new TreeMask(depth, visible);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof DraftTree t && Arrays.equals(tokens, t.tokens) && Arrays.equals(parents, t.parents);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(tokens) + Arrays.hashCode(parents);
    }

    @Override
    public String toString() {
        return "DraftTree" + Arrays.toString(tokens) + " parents " + Arrays.toString(parents);
    }
}
