package io.jemma.api.dto;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;

/** The body of {@code POST /v1/chat/completions}; fields this server does not know are ignored. */
public record ChatCompletionRequest(
        String model,
        List<ChatMessage> messages,
        Boolean stream,
        @JsonProperty("stream_options") StreamOptions streamOptions,
        @JsonProperty("max_tokens") Integer maxTokens,
        @JsonProperty("max_completion_tokens") Integer maxCompletionTokens,
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
        Boolean logprobs,
        @JsonProperty("top_logprobs") Integer topLogprobs,
        @JsonProperty("response_format") ResponseFormat responseFormat,
        String user,
        @JsonProperty("min_tokens") Integer minTokens,
        @JsonProperty("ignore_eos") Boolean ignoreEos,
        @JsonProperty("stop_token_ids") List<Integer> stopTokenIds,
        @JsonProperty("skip_special_tokens") Boolean skipSpecialTokens,
        JsonNode tools) implements GenerationFields {
}
