package io.jemma.attention;

import java.util.Arrays;

/**
 * Which of a chunk's own tokens each of its tokens may see, when the chunk is a speculative draft tree
 * rather than a causal run (topk > 1). Token {@code i} of the chunk sees every cached position before
 * the chunk's start (within its sliding window) and the chunk tokens {@code j} whose bit is set in
 * {@code visible[i]} (its ancestors and itself). Its position, for RoPE and the window, is
 * {@code startPosition + depth[i]}; its keys and values are stored at slot {@code startPosition + i},
 * so the accepted path is moved into place after verification.
 *
 * @param depth   per token, its depth in the tree (0 for the root: the last accepted token)
 * @param visible per token, a bit mask over the chunk's tokens; bit i is always set
 */
public record TreeMask(int[] depth, long[] visible) {
    /** Tokens a tree may hold: one bit each in a long. */
    public static final int MAX_TOKENS = 64;

    public TreeMask {
        if (depth.length != visible.length || depth.length == 0 || depth.length > MAX_TOKENS) {
            throw new IllegalArgumentException("a tree of " + depth.length + " tokens, " + visible.length + " masks");
        }
        for (int i = 0; i < depth.length; i++) {
            if ((visible[i] & (1L << i)) == 0 || (visible[i] >>> i >>> 1) != 0 || depth[i] < 0 || depth[i] > i) {
                throw new IllegalArgumentException("tree token " + i + ": depth " + depth[i] + ", mask "
                        + Long.toBinaryString(visible[i]) + " (a token sees itself and earlier tokens only)");
            }
        }
        depth = depth.clone();
        visible = visible.clone();
    }

    /** A chain of {@code n} tokens: the causal case, as a tree. */
    public static TreeMask chain(int n) {
        int[] d = new int[n];
        long[] v = new long[n];
        for (int i = 0; i < n; i++) {
            d[i] = i;
            v[i] = i == 63 ? -1L : (1L << (i + 1)) - 1;
        }
        return new TreeMask(d, v);
    }

    public int tokens() {
        return depth.length;
    }

    /** Whether token {@code i} of the chunk may see chunk token {@code j}. */
    public boolean sees(int i, int j) {
        return (visible[i] >>> j & 1) != 0;
    }

    @Override
    public int[] depth() {
        return depth.clone();
    }

    @Override
    public long[] visible() {
        return visible.clone();
    }

    public int depth(int i) {
        return depth[i];
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TreeMask t && Arrays.equals(depth, t.depth) && Arrays.equals(visible, t.visible);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(depth) + Arrays.hashCode(visible);
    }

    @Override
    public String toString() {
        return "TreeMask" + Arrays.toString(depth);
    }
}
