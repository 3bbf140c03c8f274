package io.jemma.api.dto;

import com.fasterxml.jackson.annotation.JsonProperty;

import java.util.List;
import java.util.Map;

/**
 * A text completion choice's {@code logprobs} (the legacy shape): parallel lists of tokens, their
 * log-probabilities, the top alternatives at each position (token to logprob) and each token's offset
 * into the choice's text.
 */
public record CompletionLogprobs(List<String> tokens,
                                 @JsonProperty("token_logprobs") List<Float> tokenLogprobs,
                                 @JsonProperty("top_logprobs") List<Map<String, Float>> topLogprobs,
                                 @JsonProperty("text_offset") List<Integer> textOffset) {
}
