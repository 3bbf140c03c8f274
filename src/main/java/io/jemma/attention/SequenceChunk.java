package io.jemma.attention;

/**
 * The new tokens one sequence contributes to a forward batch: a prefill chunk, one decode token, or the
 * draft tokens of a speculative verify (a causal chain, or a tree with {@link TreeMask}).
 *
 * @param sequenceId the sequence's KV slot
 * @param startPosition the position of the first new token (= tokens already in the cache)
 * @param tokens how many new tokens
 * @param firstRow the row of the first new token in the batch's activations
 * @param tree null for a causal chunk; else which chunk tokens each token sees, and their positions
 */
public record SequenceChunk(int sequenceId, int startPosition, int tokens, int firstRow, TreeMask tree) {
    public SequenceChunk {
        if (startPosition < 0 || tokens <= 0 || firstRow < 0) {
            throw new IllegalArgumentException("bad chunk: start " + startPosition + ", tokens " + tokens);
        }
        if (tree != null && tree.tokens() != tokens) {
            throw new IllegalArgumentException("a tree of " + tree.tokens() + " tokens for a chunk of " + tokens);
        }
    }

    /** A causal chunk. */
    public SequenceChunk(int sequenceId, int startPosition, int tokens, int firstRow) {
        this(sequenceId, startPosition, tokens, firstRow, null);
    }

    /** Position after the last new token: the sequence's length once this chunk is cached. */
    public int endPosition() {
        return startPosition + tokens;
    }

    /** The position (RoPE, sliding window) of the chunk's token {@code i}. */
    public int position(int i) {
        return startPosition + (tree == null ? i : tree.depth(i));
    }

    /** Whether the chunk's token {@code i} sees its token {@code j} (causal: {@code j <= i}). */
    public boolean sees(int i, int j) {
        return tree == null ? j <= i : tree.sees(i, j);
    }
}
