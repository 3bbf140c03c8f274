package io.jemma.bench;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * One event of an OpenAI-compatible completion stream, read from one {@code data:} line.
 *
 * <p>Servers frame events as {@code data: <json>} plus a blank line, but some write {@code data:<json>} and
 * some leave out the blank lines; reading each data line as one event (as sglang's and vLLM's clients do)
 * handles all of these. Comment lines ({@code :keep-alive}) and the other SSE fields are skipped.
 */
public sealed interface SseEvent {

    /** A chunk: its streamed text (empty when it carries none, as the role and finish chunks), and usage if any. */
    record Chunk(String content, Usage usage) implements SseEvent {
    }

    /** {@code data: [DONE]}: the server closed the stream normally. */
    record Done() implements SseEvent {
    }

    /** {@code data: {"error": ...}}: the server gave up on the request after the stream started. */
    record Error(String message) implements SseEvent {
    }

    /** The token counts of {@code stream_options.include_usage}; -1 where the server left a count out. */
    record Usage(int promptTokens, int completionTokens) {
    }

    /** The data of an SSE line, without the field name and the one optional space; null for lines that carry none. */
    static String data(String line) {
        String s = line.strip();
        if (!s.startsWith("data:")) {
            return null; // blank line, ":comment", "event:", "id:", "retry:"
        }
        return s.substring(5).strip();
    }

    /**
     * The event on an SSE line, or null for a line without data.
     *
     * @throws IllegalArgumentException when the data is neither {@code [DONE]} nor a JSON object
     */
    static SseEvent parse(String line, Api api) {
        String data = data(line);
        if (data == null || data.isEmpty()) {
            return null;
        }
        if (data.equals("[DONE]")) {
            return new Done();
        }
        JsonNode node;
        try {
            node = BenchJson.MAPPER.readTree(data);
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("not JSON in the stream: " + abbreviate(data), e);
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException("not a JSON object in the stream: " + abbreviate(data));
        }
        JsonNode error = node.get("error");
        if (error != null && !error.isNull()) {
            JsonNode message = error.get("message");
            return new Error(message != null && message.isTextual() ? message.asText() : error.toString());
        }
        return new Chunk(content(node, api), usage(node.get("usage")));
    }

    /**
     * The text of the first choice. For chat, reasoning text ({@code reasoning_content}, which servers with a
     * reasoning parser send instead of {@code content} while the model thinks) counts too: those are generated
     * tokens streamed to the user, and leaving them out would push TTFT past the thinking.
     */
    private static String content(JsonNode chunk, Api api) {
        JsonNode choices = chunk.get("choices");
        if (choices == null || !choices.isArray() || choices.isEmpty()) {
            return ""; // the usage chunk has choices: []
        }
        JsonNode choice = choices.get(0);
        if (api == Api.COMPLETIONS) {
            return text(choice.get("text"));
        }
        JsonNode delta = choice.get("delta");
        if (delta == null) {
            return "";
        }
        return text(delta.get("reasoning_content")) + text(delta.get("content"));
    }

    private static String text(JsonNode node) {
        return node != null && node.isTextual() ? node.asText() : "";
    }

    private static Usage usage(JsonNode usage) {
        if (usage == null || !usage.isObject()) {
            return null;
        }
        return new Usage(count(usage.get("prompt_tokens")), count(usage.get("completion_tokens")));
    }

    private static int count(JsonNode node) {
        return node != null && node.canConvertToInt() ? node.asInt() : -1;
    }

    private static String abbreviate(String s) {
        return s.length() <= 200 ? s : s.substring(0, 200) + "...";
    }
}
