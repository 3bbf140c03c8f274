package io.jemma.engine.sampling;

/**
 * The tokens one sampling step picked, one per row, and for the rows that asked, their logprobs.
 *
 * @param tokens   one token id per row
 * @param logprobs per row: null, or the chosen token's logprob and the top alternatives
 */
public record SampleResult(int[] tokens, RowLogprobs[] logprobs) {

    /**
     * The log-probabilities of one row under the model's own distribution (log softmax of the raw logits,
     * before penalties, masks and temperature).
     *
     * @param chosen the sampled token's logprob
     * @param topIds the most likely tokens, most likely first
     * @param top    their logprobs
     */
    public record RowLogprobs(float chosen, int[] topIds, float[] top) {
    }

    public int token(int row) {
        return tokens[row];
    }

    public RowLogprobs logprobs(int row) {
        return logprobs[row];
    }
}
