package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import io.jemma.engine.InferenceEngine;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code jemma.api-key}: /v1 needs a Bearer key (any of several), health and metrics stay open. */
@QuarkusTest
@TestProfile(ApiKeyTest.Keys.class)
class ApiKeyTest {
    static final String KEY_ONE = "sk-jemma-test-one-7f3a";
    static final String KEY_TWO = "sk-jemma-test-two-91c2";
    static final String WRONG = "sk-jemma-wrong-key-5e5e-d00d";

    public static class Keys implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("jemma.api-key", KEY_ONE + ", " + KEY_TWO);
        }
    }

    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    @Inject
    InferenceEngine engine;

    @BeforeEach
    void loaded() {
        ApiClient.awaitLoaded(engine);
    }

    static HttpResponse<String> send(String method, String path, String authorization, String body) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(ApiClient.base() + path))
                .timeout(Duration.ofMinutes(2));
        if (authorization != null) {
            b.header("Authorization", authorization);
        }
        if (body != null) {
            b.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(body));
        } else {
            b.method(method, HttpRequest.BodyPublishers.noBody());
        }
        try {
            return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static void assertUnauthorized(HttpResponse<String> r) {
        assertEquals(401, r.statusCode(), r.body());
        assertEquals("Bearer", r.headers().firstValue("WWW-Authenticate").orElse(null));
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
        JsonNode error = ApiClient.parse(r.body()).get("error");
        assertEquals("invalid_request_error", error.get("type").asText());
        assertEquals("invalid_api_key", error.get("code").asText());
        assertTrue(error.get("param").isNull());
        assertTrue(error.get("message").asText().length() > 5);
    }

    private static String chatBody() {
        return ApiClient.chat("Hi").put("max_tokens", 2).toString();
    }

    @Test
    void aMissingOrMalformedKeyIs401() {
        assertUnauthorized(send("GET", "/v1/models", null, null));
        assertUnauthorized(send("POST", "/v1/chat/completions", null, chatBody()));
        assertUnauthorized(send("POST", "/v1/completions", null, ApiClient.completion("Hi").toString()));
        assertUnauthorized(send("GET", "/v1/models", "Basic " + KEY_ONE, null));
        assertUnauthorized(send("GET", "/v1/models", KEY_ONE, null));
        assertUnauthorized(send("GET", "/v1/models", "Bearer ", null));
        assertUnauthorized(send("GET", "/v1/nothing-here", null, null));
    }

    @Test
    void aWrongKeyIs401() {
        assertUnauthorized(send("GET", "/v1/models", "Bearer " + WRONG, null));
        assertUnauthorized(send("POST", "/v1/chat/completions", "Bearer " + WRONG, chatBody()));
        // A prefix or extension of a right key is wrong too.
        assertUnauthorized(send("GET", "/v1/models", "Bearer " + KEY_ONE.substring(0, 10), null));
        assertUnauthorized(send("GET", "/v1/models", "Bearer " + KEY_ONE + "x", null));
        assertUnauthorized(send("GET", "/v1/models", "Bearer " + KEY_ONE + "," + KEY_TWO, null));
    }

    @Test
    void eitherKeyIsAccepted() {
        for (String key : List.of(KEY_ONE, KEY_TWO)) {
            HttpResponse<String> models = send("GET", "/v1/models", "Bearer " + key, null);
            assertEquals(200, models.statusCode(), models.body());
            HttpResponse<String> chat = send("POST", "/v1/chat/completions", "Bearer " + key, chatBody());
            assertEquals(200, chat.statusCode(), chat.body());
            assertEquals("chat.completion", ApiClient.parse(chat.body()).get("object").asText());
        }
        // The scheme is case-insensitive, as RFC 9110 says.
        assertEquals(200, send("GET", "/v1/models", "bearer " + KEY_TWO, null).statusCode());
        // A key does not change what a bad request is told.
        assertEquals(400, send("POST", "/v1/chat/completions", "Bearer " + KEY_ONE, "{").statusCode());
    }

    @Test
    void healthAndMetricsStayOpen() {
        for (String path : List.of("/q/health/live", "/q/health/ready", "/q/health/started", "/q/health",
                "/health_generate", "/q/metrics")) {
            HttpResponse<String> r = send("GET", path, null, null);
            assertEquals(200, r.statusCode(), path + ": " + r.body());
        }
    }

    @Test
    void theKeysNeverReachTheLog() {
        List<String> lines = new ArrayList<>();
        Handler capture = new Handler() {
            @Override
            public void publish(LogRecord record) {
                synchronized (lines) {
                    lines.add(String.valueOf(record.getMessage()) + " " + java.util.Arrays.toString(record.getParameters())
                            + " " + record.getThrown());
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        Logger root = Logger.getLogger("");
        Level before = root.getLevel();
        // Everything, down to TRACE, goes to the capture alone while the requests run.
        Handler[] others = root.getHandlers();
        for (Handler h : others) {
            root.removeHandler(h);
        }
        root.addHandler(capture);
        root.setLevel(Level.ALL);
        try {
            assertUnauthorized(send("GET", "/v1/models", "Bearer " + WRONG, null));
            assertUnauthorized(send("POST", "/v1/chat/completions", "Bearer " + WRONG, chatBody()));
            assertEquals(200, send("GET", "/v1/models", "Bearer " + KEY_ONE, null).statusCode());
        } finally {
            root.setLevel(before);
            root.removeHandler(capture);
            for (Handler h : others) {
                root.addHandler(h);
            }
        }
        synchronized (lines) {
            assertFalse(lines.isEmpty(), "the capture saw the requests' DEBUG and TRACE lines");
            for (String line : lines) {
                assertFalse(line.contains(WRONG), line);
                assertFalse(line.contains(KEY_ONE), line);
                assertFalse(line.contains(KEY_TWO), line);
            }
        }
    }
}
