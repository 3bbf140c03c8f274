package io.jemma.api.dto;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

import java.util.List;

/** One event of a streamed chat completion ({@code object: chat.completion.chunk}). */
public record ChatCompletionChunk(String id, String object, long created, String model, List<Choice> choices,
                                  @JsonInclude(JsonInclude.Include.NON_NULL) Usage usage) {

    public ChatCompletionChunk(String id, long created, String model, List<Choice> choices, Usage usage) {
        this(id, "chat.completion.chunk", created, model, choices, usage);
    }

    public record Choice(int index, Delta delta, ChatLogprobs logprobs,
                         @JsonProperty("finish_reason") String finishReason) {
    }

    /** What this chunk adds to the message: the role on the first chunk, then content; empty on the last. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Delta(String role, String content) {
        public static final Delta EMPTY = new Delta(null, null);
    }
}
