package io.jemma.attention;

/**
 * The new tokens one sequence contributes to a forward batch: a prefill chunk, or one decode token.
 *
 * @param sequenceId the sequence's KV slot
 * @param startPosition the position of the first new token (= tokens already in the cache)
 * @param tokens how many new tokens
 * @param firstRow the row of the first new token in the batch's activations
 */
public record SequenceChunk(int sequenceId, int startPosition, int tokens, int firstRow) {
    public SequenceChunk {
        if (startPosition < 0 || tokens <= 0 || firstRow < 0) {
            throw new IllegalArgumentException("bad chunk: start " + startPosition + ", tokens " + tokens);
        }
    }

    /** Position after the last new token: the sequence's length once this chunk is cached. */
    public int endPosition() {
        return startPosition + tokens;
    }
}
