package io.jemma.api.dto;

import com.fasterxml.jackson.annotation.JsonProperty;

import java.util.List;

/** A chat choice's {@code logprobs}: one entry per generated token. */
public record ChatLogprobs(List<TokenEntry> content) {

    /** A generated token, its log-probability, its UTF-8 bytes and the most likely alternatives. */
    public record TokenEntry(String token, float logprob, List<Integer> bytes,
                             @JsonProperty("top_logprobs") List<Top> topLogprobs) {
    }

    /** An alternative token at the same position. */
    public record Top(String token, float logprob, List<Integer> bytes) {
    }
}
