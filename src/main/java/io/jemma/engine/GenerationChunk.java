package io.jemma.engine;

import java.util.List;

/**
 * What one engine step produced for one sequence: new text (complete UTF-8 characters only, stop
 * strings held back until they can be ruled out), the tokens behind it, and on the last chunk the
 * finish reason. Token counts are running totals, so the last chunk carries the usage.
 *
 * @param text             new text, possibly empty
 * @param tokenIds         the tokens generated in this step (none on a final chunk that only finishes)
 * @param logprobs         one entry per token when logprobs were asked for, else empty
 * @param finishReason     null until the last chunk
 * @param promptTokens     prompt length
 * @param completionTokens tokens generated so far
 */
public record GenerationChunk(String text, List<Integer> tokenIds, List<TokenLogprob> logprobs,
                              FinishReason finishReason, int promptTokens, int completionTokens) {
    public GenerationChunk {
        tokenIds = List.copyOf(tokenIds);
        logprobs = List.copyOf(logprobs);
    }

    public boolean last() {
        return finishReason != null;
    }
}
