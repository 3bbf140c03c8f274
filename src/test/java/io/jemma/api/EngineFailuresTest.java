package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jemma.engine.EngineRejection;
import io.jemma.engine.InferenceEngine;
import io.quarkus.arc.ClientProxy;
import io.quarkus.test.junit.QuarkusMock;
import io.quarkus.test.junit.QuarkusTest;
import io.smallrye.mutiny.Multi;
import jakarta.inject.Inject;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static io.jemma.api.ApiClient.chat;
import static io.jemma.api.ApiClient.completion;
import static io.jemma.api.ApiClient.post;
import static io.jemma.api.ApiClient.sseData;
import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What clients see when the engine refuses or fails: its rejections keep their status (429 with
 * Retry-After when the queue is full, 503 while loading or draining), a stream that fails after it
 * started ends with an error event and [DONE], and the health probes report the engine's state. The
 * failures are put in with a {@link FakeEngine} around the real one.
 */
@QuarkusTest
class EngineFailuresTest {
    private static final String CHAT = "/v1/chat/completions";

    @Inject
    InferenceEngine engine;

    InferenceEngine real;
    FakeEngine fake;

    @BeforeEach
    void installFake() {
        ApiClient.awaitLoaded(engine);
        real = ClientProxy.unwrap(engine);
        fake = new FakeEngine(real);
        QuarkusMock.installMockForType(fake, InferenceEngine.class);
    }

    @AfterEach
    void nothingLeaks() {
        ApiClient.awaitIdle(real);
    }

    private static void assertError(HttpResponse<String> r, int status, String type, String code) {
        assertEquals(status, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
        JsonNode error = ApiClient.parse(r.body()).get("error");
        assertEquals(type, error.get("type").asText(), r.body());
        assertEquals(code, error.get("code").asText(), r.body());
        assertTrue(error.get("message").asText().length() > 5);
    }

    @Test
    void aFullQueueIs429WithRetryAfterStreamedOrNot() {
        fake.generate = r -> Multi.createFrom().failure(EngineRejection.queueFull(256));
        for (boolean stream : List.of(false, true)) {
            HttpResponse<String> r = post(CHAT, chat("Hi").put("stream", stream));
            assertError(r, 429, "rate_limit_error", "rate_limit_exceeded");
            assertEquals("1", r.headers().firstValue("Retry-After").orElse(null));
        }
    }

    @Test
    void whenOneChoiceIsRefusedTheOthersAreCancelled() {
        AtomicInteger calls = new AtomicInteger();
        // The engine refuses a full queue when asked (before the response starts), as the real one does.
        fake.generate = r -> {
            if (calls.getAndIncrement() == 0) {
                return real.generate(r);
            }
            throw EngineRejection.queueFull(256);
        };
        ObjectNode body = completion("Hi").put("n", 2).put("max_tokens", 2000).put("ignore_eos", true);
        for (boolean stream : List.of(false, true)) {
            calls.set(0);
            assertError(post("/v1/completions", body.deepCopy().put("stream", stream)), 429, "rate_limit_error",
                    "rate_limit_exceeded");
            ApiClient.awaitIdle(real); // the first choice's sequence was aborted
        }
    }

    @Test
    void whileTheModelLoadsRequestsAre503() {
        EngineRejection loading = EngineRejection.unavailable("the model is still loading");
        fake.notReady = loading;
        fake.loaded = false;
        fake.generate = r -> {
            throw loading;
        };
        HttpResponse<String> r = post(CHAT, chat("Hi"));
        assertError(r, 503, "service_unavailable_error", "service_unavailable");
        assertEquals("5", r.headers().firstValue("Retry-After").orElse(null));
        assertError(post("/v1/completions", completion("Hi").put("stream", true)), 503, "service_unavailable_error",
                "service_unavailable");
        given().get("/v1/models").then().statusCode(503).body("error.code", equalTo("service_unavailable"));
        given().get("/q/health/ready").then().statusCode(503);
        given().get("/q/health/started").then().statusCode(503)
                .body("checks.find { it.name == 'model' }.data.state", equalTo("loading"));
        given().get("/q/health/live").then().statusCode(200);
        given().get("/health_generate").then().statusCode(503).body("status", equalTo("unavailable"));
    }

    @Test
    void aFailedLoadShowsInTheStartupProbe() {
        fake.loaded = false;
        fake.loadFailure = new IllegalStateException("config.json: not a Gemma 4 checkpoint");
        given().get("/q/health/started").then().statusCode(503)
                .body("checks.find { it.name == 'model' }.data.error", containsString("not a Gemma 4"));
        given().get("/q/health/ready").then().statusCode(503)
                .body("checks.find { it.name == 'engine' }.data.reason", equalTo("the model failed to load"));
    }

    @Test
    void drainingAndAFullQueueTakeTheServerOutOfRotation() {
        fake.saturated = true;
        given().get("/q/health/ready").then().statusCode(503)
                .body("checks.find { it.name == 'engine' }.data.reason", equalTo("the request queue is full"));
        fake.saturated = false;
        fake.draining = true;
        given().get("/q/health/ready").then().statusCode(503)
                .body("checks.find { it.name == 'engine' }.data.reason", equalTo("draining"));
        given().get("/q/health/live").then().statusCode(200);
    }

    @Test
    void aStuckOrDeadSchedulerFailsLiveness() {
        fake.schedulerSilenceNanos = 120_000_000_000L;
        given().get("/q/health/live").then().statusCode(503)
                .body("checks.find { it.name == 'scheduler' }.status", equalTo("DOWN"));
        fake.schedulerSilenceNanos = null;
        fake.schedulerAlive = false;
        given().get("/q/health/live").then().statusCode(503)
                .body("checks.find { it.name == 'scheduler' }.data.reason", containsString("stopped"));
    }

    @Test
    void healthGenerateIs503WhenNoTokenComes() {
        fake.generate = r -> Multi.createFrom().failure(EngineRejection.queueFull(256));
        given().get("/health_generate").then().statusCode(503);
        fake.generate = r -> Multi.createFrom().nothing(); // times out (jemma.health-generate-timeout)
        given().get("/health_generate").then().statusCode(503)
                .body("reason", equalTo("no token within the timeout"));
        fake.generate = real::generate;
        given().get("/health_generate").then().statusCode(200);
    }

    @Test
    void aStreamThatFailsAfterItStartedEndsWithAnErrorEventAndDone() {
        fake.generate = r -> real.generate(r).select().first(3)
                .onCompletion().failWith(() -> new IllegalStateException("the device fell off"));
        ObjectNode body = chat("Hi").put("stream", true).put("max_tokens", 100).put("ignore_eos", true);
        HttpResponse<String> r = post(CHAT, body);
        assertEquals(200, r.statusCode());
        List<String> data = sseData(r.body());
        assertEquals("[DONE]", data.getLast());
        JsonNode error = ApiClient.parse(data.get(data.size() - 2)).get("error");
        assertEquals("server_error", error.get("type").asText());
        assertTrue(error.get("message").asText().contains("the device fell off"));
        assertTrue(ApiClient.parse(data.getFirst()).at("/choices/0/delta/role").asText().equals("assistant"));
        // not streamed: a 500 in OpenAI form
        assertError(post(CHAT, chat("Hi").put("max_tokens", 100).put("ignore_eos", true)), 500, "server_error",
                "internal_error");
    }

    @Test
    void anEngineRejectionOfThePromptNamesTheRightField() {
        fake.generate = r -> {
            throw EngineRejection.tooLong("messages", "the prompt has 99 tokens; this server accepts at most 10");
        };
        HttpResponse<String> chat = post(CHAT, chat("Hi"));
        assertError(chat, 400, "invalid_request_error", "context_length_exceeded");
        assertEquals("messages", ApiClient.parse(chat.body()).at("/error/param").asText());
        HttpResponse<String> completion = post("/v1/completions", completion("Hi"));
        assertEquals("prompt", ApiClient.parse(completion.body()).at("/error/param").asText());
    }

    @Test
    void aChunkWithoutAFinishIsAnAbort() {
        fake.generate = r -> real.generate(r).select().first(2); // ends without a finish reason
        JsonNode r = ApiClient.postJson(CHAT, chat("Hi").put("max_tokens", 50).put("ignore_eos", true));
        assertEquals("abort", r.at("/choices/0/finish_reason").asText());
        assertEquals(2, r.at("/usage/completion_tokens").asInt());
    }
}
