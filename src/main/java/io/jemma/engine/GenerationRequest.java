package io.jemma.engine;

import io.jemma.engine.sampling.Penalties;
import io.jemma.engine.sampling.SamplingParams;

import java.util.List;
import java.util.Set;

/**
 * One sequence to generate: the prompt's token ids and everything that decides when and how it stops.
 * The API layer builds it from an OpenAI request (one per choice when n > 1).
 *
 * @param promptIds         the tokenized prompt (chat template already applied; BOS included)
 * @param sampling          temperature, top-k/p, min-p and the seed of this sequence's random stream
 * @param penalties         frequency / presence / repetition penalties
 * @param maxTokens         generate at most this many tokens (finish reason "length")
 * @param minTokens         never stop (EOS, stop tokens, stop strings) before this many
 * @param ignoreEos         keep going past the model's end-of-sequence tokens
 * @param stop              stop strings: generation ends where one appears; it is not part of the output
 * @param stopTokenIds      extra token ids that end generation (as EOS does; not part of the output)
 * @param skipSpecialTokens leave special tokens out of the text
 * @param topLogprobs       -1: no logprobs; n >= 0: each token's logprob and the n most likely alternatives
 */
public record GenerationRequest(int[] promptIds, SamplingParams sampling, Penalties penalties, int maxTokens,
                                int minTokens, boolean ignoreEos, List<String> stop, Set<Integer> stopTokenIds,
                                boolean skipSpecialTokens, int topLogprobs) {

    public GenerationRequest {
        promptIds = promptIds.clone();
        stop = List.copyOf(stop);
        stopTokenIds = Set.copyOf(stopTokenIds);
        if (promptIds.length == 0) {
            throw new IllegalArgumentException("the prompt is empty");
        }
        if (maxTokens < 1) {
            throw new IllegalArgumentException("max_tokens must be at least 1, got " + maxTokens);
        }
        if (minTokens < 0 || minTokens > maxTokens) {
            throw new IllegalArgumentException("min_tokens must be between 0 and max_tokens, got " + minTokens);
        }
    }

    /** Greedy decoding of up to maxTokens, stopping at EOS: the plain case. */
    public static GenerationRequest greedy(int[] promptIds, int maxTokens) {
        return new GenerationRequest(promptIds, SamplingParams.GREEDY, Penalties.NONE, maxTokens, 0, false, List.of(),
                Set.of(), true, -1);
    }

    @Override
    public int[] promptIds() {
        return promptIds.clone();
    }

    public int promptLength() {
        return promptIds.length;
    }

    /** Positions this sequence may reach: what its KV reservation must cover. */
    public int maxLength() {
        return promptIds.length + maxTokens;
    }
}
