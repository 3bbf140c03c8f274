package io.jemma.api.dto;

import com.fasterxml.jackson.annotation.JsonProperty;

/** {@code stream_options}: with include_usage, a last chunk carries the usage. */
public record StreamOptions(@JsonProperty("include_usage") Boolean includeUsage) {
}
