package io.jemma.api.dto;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * One message of a chat request.
 *
 * @param role    system, user or assistant (developer is read as system)
 * @param content a string, a list of {@code {"type": "text", "text": ...}} parts, or null (assistant only)
 * @param name    ignored
 */
public record ChatMessage(String role, JsonNode content, String name) {
}
