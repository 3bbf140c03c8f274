package io.jemma.api.dto;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

import java.util.List;

/**
 * A text completion ({@code object: text_completion}), streamed as several of these (the usage only on
 * the last one when asked for) or returned whole.
 */
public record Completion(String id, String object, long created, String model, List<Choice> choices,
                         @JsonInclude(JsonInclude.Include.NON_NULL) Usage usage) {

    public Completion(String id, long created, String model, List<Choice> choices, Usage usage) {
        this(id, "text_completion", created, model, choices, usage);
    }

    public record Choice(int index, String text, CompletionLogprobs logprobs,
                         @JsonProperty("finish_reason") String finishReason) {
    }
}
