package io.jemma.api.dto;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * A model card of {@code /v1/models}: OpenAI's fields plus the context length (under vLLM's and
 * sglang's names) and where the model runs.
 */
public record ModelInfo(String id, String object, long created, @JsonProperty("owned_by") String ownedBy,
                        @JsonProperty("context_length") int contextLength,
                        @JsonProperty("max_model_len") int maxModelLen,
                        String root,
                        String backend,
                        @JsonProperty("attention_backend") String attentionBackend) {
}
