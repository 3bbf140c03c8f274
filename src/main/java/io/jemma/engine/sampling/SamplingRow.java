package io.jemma.engine.sampling;

import java.util.Set;

/**
 * One row of logits to pick a token from, with everything that decides how: the request's parameters and
 * its own random stream (host path), its penalties over what it has seen, the tokens forbidden at this
 * step, and whether its logprobs are wanted.
 *
 * @param params      temperature, top-k/p, min-p, seed
 * @param sampler     the request's host sampler (its random stream); null: greedy
 * @param processor   penalties over the prompt and the generated tokens; null: none
 * @param endTokens   tokens masked to -inf at this step (EOS and stop tokens while under min_tokens)
 * @param topLogprobs -1: no logprobs; n >= 0: the chosen token's logprob and the n most likely tokens
 * @param draw        how many tokens this request has drawn before: the GPU's random stream is
 *                    counter-based (seed, draw), so a request's output does not depend on its batch
 */
public record SamplingRow(SamplingParams params, Sampler sampler, LogitsProcessor processor, Set<Integer> endTokens,
                          int topLogprobs, long draw) {

    public SamplingRow {
        endTokens = Set.copyOf(endTokens);
    }

    /** A greedy row without penalties or logprobs (padding rows of a CUDA graph bucket, tests). */
    public static SamplingRow greedy() {
        return new SamplingRow(SamplingParams.GREEDY, null, null, Set.of(), -1, 0);
    }

    public boolean greedyOnly() {
        return params.greedy();
    }

    public Penalties penalties() {
        return processor == null ? Penalties.NONE : processor.penalties();
    }
}
