package io.jemma.api.dto;

import com.fasterxml.jackson.annotation.JsonProperty;

import java.util.List;

/** A non-streamed chat completion ({@code object: chat.completion}). */
public record ChatCompletion(String id, String object, long created, String model, List<Choice> choices,
                             Usage usage) {

    public ChatCompletion(String id, long created, String model, List<Choice> choices, Usage usage) {
        this(id, "chat.completion", created, model, choices, usage);
    }

    public record Choice(int index, Message message, ChatLogprobs logprobs,
                         @JsonProperty("finish_reason") String finishReason) {
    }

    public record Message(String role, String content) {
    }
}
