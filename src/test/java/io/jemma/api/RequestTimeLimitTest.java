package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import io.jemma.engine.InferenceEngine;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code jemma.max-request-time}: a request that runs past it ends with finish_reason "length" and frees its pages. */
@QuarkusTest
@TestProfile(RequestTimeLimitTest.ShortLimit.class)
class RequestTimeLimitTest {
    static final int MAX_TOKENS = 4000;

    public static class ShortLimit implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("jemma.max-request-time", "30ms");
        }
    }

    @Inject
    InferenceEngine engine;

    @Test
    void aRequestPastTheLimitEndsWithLength() {
        ApiClient.awaitLoaded(engine);
        JsonNode r = ApiClient.postJson("/v1/completions", ApiClient.completion("Go on").put("max_tokens", MAX_TOKENS)
                .put("min_tokens", MAX_TOKENS));
        assertEquals("length", r.at("/choices/0/finish_reason").asText(), r.toString());
        int tokens = r.at("/usage/completion_tokens").asInt();
        assertTrue(tokens >= 1 && tokens < MAX_TOKENS, "completion_tokens " + tokens);
        ApiClient.awaitIdle(engine);

        String body = ApiClient.post("/v1/completions", ApiClient.completion("Go on").put("max_tokens", MAX_TOKENS)
                .put("min_tokens", MAX_TOKENS).put("stream", true)).body();
        List<JsonNode> events = ApiClient.sseJson(body);
        assertEquals("length", ApiClient.finishReason(events, 0));
        assertTrue(events.size() < MAX_TOKENS, "events " + events.size());
        ApiClient.awaitIdle(engine);
        assertEquals(0, engine.stats().kvPagesInUse());
    }
}
