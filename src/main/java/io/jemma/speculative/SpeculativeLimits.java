package io.jemma.speculative;

/**
 * What speculative decoding asks of attention each round (sglang's --speculative-num-steps,
 * --speculative-eagle-topk, --speculative-num-draft-tokens): the verify pass gives every request
 * {@code numDraftTokens} query tokens, a chain when {@code topK == 1}, a tree otherwise.
 */
public record SpeculativeLimits(int numSteps, int topK, int numDraftTokens) {
    /** No speculation: one query token per decoding request. */
    public static final SpeculativeLimits NONE = new SpeculativeLimits(0, 1, 1);

    public SpeculativeLimits {
        if (numSteps < 0 || topK < 1 || numDraftTokens < 1) {
            throw new IllegalArgumentException("speculative steps " + numSteps + ", topk " + topK
                    + ", draft tokens " + numDraftTokens);
        }
    }

    /** A chain of {@code steps} draft tokens, verified with the last accepted token: steps + 1 tokens. */
    public static SpeculativeLimits chain(int steps) {
        return new SpeculativeLimits(steps, 1, steps + 1);
    }

    public boolean enabled() {
        return numSteps > 0;
    }

    /** Whether the draft is a tree (needs tree masks in attention). */
    public boolean tree() {
        return topK > 1;
    }

    /** Query tokens per request in a verify pass (1 without speculation). */
    public int queryTokensPerRequest() {
        return enabled() ? numDraftTokens : 1;
    }

    @Override
    public String toString() {
        return enabled() ? numSteps + "-" + topK + "-" + numDraftTokens : "none";
    }
}
