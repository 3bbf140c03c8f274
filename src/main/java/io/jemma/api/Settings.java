package io.jemma.api;

import io.jemma.engine.GenerationRequest;
import io.jemma.engine.sampling.Penalties;
import io.jemma.engine.sampling.SamplingParams;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The validated, prompt-independent part of a chat or completions request; {@link #forChoice} makes the
 * engine request of one choice once the prompt is known.
 *
 * @param maxTokens      as asked, or null for the server default (capped to what the context leaves)
 * @param maxTokensParam the field max_tokens came from, for error messages
 * @param seed           the request's seed, or null for a random one per choice
 * @param topLogprobs    -1: no logprobs; else the number of alternatives per token
 */
record Settings(double temperature, int topK, double topP, double minP, Long seed, Penalties penalties,
                Integer maxTokens, String maxTokensParam, int minTokens, boolean ignoreEos, List<String> stop,
                Set<Integer> stopTokenIds, boolean skipSpecialTokens, int topLogprobs, int n, boolean stream,
                boolean includeUsage) {

    /**
     * The engine request of choice {@code choice} (0-based) for this prompt.
     *
     * @throws ApiError when the prompt and max_tokens do not fit the context
     */
    GenerationRequest forChoice(int[] prompt, int choice, int contextLength, int defaultMaxTokens,
                                String promptParam) {
        int max = resolveMaxTokens(prompt.length, contextLength, defaultMaxTokens, promptParam);
        long choiceSeed = seed != null ? seed + choice : ThreadLocalRandom.current().nextLong();
        return new GenerationRequest(prompt, new SamplingParams(temperature, topK, topP, minP, choiceSeed), penalties,
                max, minTokens, ignoreEos, stop, stopTokenIds, skipSpecialTokens, topLogprobs);
    }

    private int resolveMaxTokens(int promptLength, int contextLength, int defaultMaxTokens, String promptParam) {
        if (promptLength >= contextLength) {
            throw ApiError.tooLong(promptParam, "This model's maximum context length is " + contextLength
                    + " tokens, and the prompt has " + promptLength + " tokens; shorten it");
        }
        int room = contextLength - promptLength;
        int max;
        if (maxTokens == null) {
            max = Math.min(defaultMaxTokens, room);
        } else if (maxTokens > room) {
            throw ApiError.tooLong(maxTokensParam, "This model's maximum context length is " + contextLength
                    + " tokens; the prompt has " + promptLength + " tokens and " + maxTokensParam + " is " + maxTokens
                    + ", so at most " + room + " tokens can be generated. Lower " + maxTokensParam + ".");
        } else {
            max = maxTokens;
        }
        if (minTokens > max) {
            throw ApiError.invalid("min_tokens", "min_tokens (" + minTokens + ") must not exceed the maximum number "
                    + "of tokens to generate (" + max + ")");
        }
        return max;
    }
}
