package io.jemma.api.dto;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;

/**
 * The body of {@code POST /v1/completions}. {@code prompt} is a string, a list of strings, a list of
 * token ids or a list of such lists; fields this server does not know are ignored.
 */
public record CompletionRequest(
        String model,
        JsonNode prompt,
        Boolean stream,
        @JsonProperty("stream_options") StreamOptions streamOptions,
        @JsonProperty("max_tokens") Integer maxTokens,
        Double temperature,
        @JsonProperty("top_p") Double topP,
        @JsonProperty("top_k") Integer topK,
        @JsonProperty("min_p") Double minP,
        Integer n,
        JsonNode stop,
        Long seed,
        @JsonProperty("frequency_penalty") Double frequencyPenalty,
        @JsonProperty("presence_penalty") Double presencePenalty,
        @JsonProperty("repetition_penalty") Double repetitionPenalty,
        Integer logprobs,
        Boolean echo,
        String suffix,
        @JsonProperty("best_of") Integer bestOf,
        String user,
        @JsonProperty("min_tokens") Integer minTokens,
        @JsonProperty("ignore_eos") Boolean ignoreEos,
        @JsonProperty("stop_token_ids") List<Integer> stopTokenIds,
        @JsonProperty("skip_special_tokens") Boolean skipSpecialTokens) implements GenerationFields {
}
