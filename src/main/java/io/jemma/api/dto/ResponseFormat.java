package io.jemma.api.dto;

/** {@code response_format}: only {@code {"type": "text"}} is served. */
public record ResponseFormat(String type) {
}
