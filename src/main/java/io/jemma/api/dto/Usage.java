package io.jemma.api.dto;

import com.fasterxml.jackson.annotation.JsonProperty;

/** Token counts of a response: the prompt once per distinct prompt, completions summed over choices. */
public record Usage(@JsonProperty("prompt_tokens") int promptTokens,
                    @JsonProperty("completion_tokens") int completionTokens,
                    @JsonProperty("total_tokens") int totalTokens) {

    public static Usage of(int prompt, int completion) {
        return new Usage(prompt, completion, prompt + completion);
    }
}
