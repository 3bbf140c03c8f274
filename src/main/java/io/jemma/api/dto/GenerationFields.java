package io.jemma.api.dto;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;

/**
 * The request fields chat and text completions share: sampling, penalties, stopping, n, streaming and
 * the common server extras (top_k, min_p, repetition_penalty, min_tokens, ignore_eos, stop_token_ids,
 * skip_special_tokens). Absent fields are null.
 */
public interface GenerationFields {
    String model();

    Boolean stream();

    StreamOptions streamOptions();

    Double temperature();

    Double topP();

    Integer topK();

    Double minP();

    Integer n();

    /** A string or a list of strings. */
    JsonNode stop();

    Long seed();

    Double frequencyPenalty();

    Double presencePenalty();

    Double repetitionPenalty();

    Integer minTokens();

    Boolean ignoreEos();

    List<Integer> stopTokenIds();

    Boolean skipSpecialTokens();

    String user();
}
