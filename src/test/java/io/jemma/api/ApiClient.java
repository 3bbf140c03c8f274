package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jemma.engine.InferenceEngine;
import io.restassured.RestAssured;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;

/** What the API tests share: raw HTTP to the test server, SSE parsing, and waiting for the engine. */
final class ApiClient {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String MODEL = "tiny-31b"; // the %test profile serves golden/tiny-31b
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    private ApiClient() {
    }

    static String base() {
        return "http://127.0.0.1:" + RestAssured.port;
    }

    /** POSTs JSON and returns the response with its body as text, exactly as sent. */
    static HttpResponse<String> post(String path, String body) {
        HttpRequest request = HttpRequest.newBuilder(URI.create(base() + path))
                .header("Content-Type", "application/json")
                .timeout(Duration.ofMinutes(5))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        try {
            return HTTP.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static HttpResponse<String> post(String path, JsonNode body) {
        return post(path, body.toString());
    }

    static JsonNode postJson(String path, JsonNode body) {
        HttpResponse<String> r = post(path, body);
        if (r.statusCode() != 200) {
            throw new AssertionError("HTTP " + r.statusCode() + ": " + r.body());
        }
        return parse(r.body());
    }

    static JsonNode parse(String json) {
        try {
            return JSON.readTree(json);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A chat request body with one user message. */
    static ObjectNode chat(String userText) {
        ObjectNode body = JSON.createObjectNode().put("model", MODEL);
        body.putArray("messages").addObject().put("role", "user").put("content", userText);
        return body;
    }

    static ObjectNode completion(String prompt) {
        return JSON.createObjectNode().put("model", MODEL).put("prompt", prompt);
    }

    /**
     * Splits an SSE body into its events' data, checking the framing on the way: every event is
     * {@code data: <payload>} (with the space) followed by a blank line, and nothing else is sent.
     */
    static List<String> sseData(String body) {
        if (!body.endsWith("\n\n")) {
            throw new AssertionError("the stream does not end with a blank line: " + tail(body));
        }
        List<String> out = new ArrayList<>();
        for (String event : body.substring(0, body.length() - 2).split("\n\n", -1)) {
            if (!event.startsWith("data: ") || event.contains("\n")) {
                throw new AssertionError("not a single 'data: ' line: [" + event + "]");
            }
            out.add(event.substring("data: ".length()));
        }
        return out;
    }

    /** The JSON events of a stream that ends with [DONE] (which is not returned). */
    static List<JsonNode> sseJson(String body) {
        List<String> data = sseData(body);
        if (!data.getLast().equals("[DONE]")) {
            throw new AssertionError("the stream does not end with [DONE]: " + tail(body));
        }
        List<JsonNode> out = new ArrayList<>();
        for (String d : data.subList(0, data.size() - 1)) {
            if (d.equals("[DONE]")) {
                throw new AssertionError("[DONE] before the end");
            }
            out.add(parse(d));
        }
        return out;
    }

    /** The concatenated text of one choice of a chat or completions stream. */
    static String streamedText(List<JsonNode> events, int index) {
        StringBuilder text = new StringBuilder();
        for (JsonNode e : events) {
            for (JsonNode c : e.path("choices")) {
                if (c.path("index").asInt() == index) {
                    JsonNode piece = c.has("delta") ? c.path("delta").path("content") : c.path("text");
                    text.append(piece.asText(""));
                }
            }
        }
        return text.toString();
    }

    static String finishReason(List<JsonNode> events, int index) {
        String reason = null;
        for (JsonNode e : events) {
            for (JsonNode c : e.path("choices")) {
                if (c.path("index").asInt() == index && c.hasNonNull("finish_reason")) {
                    if (reason != null) {
                        throw new AssertionError("two finish reasons for choice " + index);
                    }
                    reason = c.get("finish_reason").asText();
                }
            }
        }
        return reason;
    }

    private static String tail(String body) {
        return body.length() > 200 ? "..." + body.substring(body.length() - 200) : body;
    }

    static void awaitLoaded(InferenceEngine engine) {
        await("the model to load", engine::loaded);
    }

    /** Waits until no sequence runs or waits and every KV page is back in the pools. */
    static void awaitIdle(InferenceEngine engine) {
        await("the engine to go idle with no KV page in use", () -> {
            var s = engine.stats();
            return s.running() == 0 && s.queued() == 0 && s.kvPagesInUse() == 0 && s.kvSequences() == 0;
        });
    }

    /** Polls a condition (not a timing assertion: the bound only keeps a broken build from hanging). */
    static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("gave up waiting for " + what);
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
    }
}
