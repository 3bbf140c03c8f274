package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import io.jemma.engine.EngineStats;
import io.jemma.engine.InferenceEngine;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A burst ten times what the engine takes (2 running + 4 queued, 60 concurrent streams) against the
 * real engine: the excess is refused with 429 and Retry-After before its stream starts, every admitted
 * stream ends with a finish_reason and [DONE], the limits and the KV pool hold during the burst, and
 * every page is back afterwards.
 */
@QuarkusTest
@TestProfile(OverloadTest.SmallLimits.class)
class OverloadTest {
    static final int RUNNING = 2;
    static final int QUEUED = 4;
    static final int BURST = 10 * (RUNNING + QUEUED);
    static final int MAX_TOKENS = 200;
    static final int CONTEXT = 512;
    static final int PAGE = 16;

    public static class SmallLimits implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("jemma.max-running-requests", "" + RUNNING, "jemma.max-queued-requests", "" + QUEUED,
                    "jemma.context-length", "" + CONTEXT, "jemma.page-size", "" + PAGE);
        }
    }

    @Inject
    InferenceEngine engine;

    @Test
    void theExcessIs429AndTheAdmittedFinish() throws Exception {
        ApiClient.awaitLoaded(engine);
        ApiClient.awaitIdle(engine);
        String body = ApiClient.completion("Overload, request").put("stream", true).put("max_tokens", MAX_TOKENS)
                .put("min_tokens", MAX_TOKENS).put("temperature", 0).toString();
        ExecutorService pool = Executors.newFixedThreadPool(BURST);
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).executor(pool)
                .connectTimeout(Duration.ofSeconds(10)).build();
        // Sample the engine while the burst runs: the limits and the KV pool must hold throughout.
        AtomicBoolean sampling = new AtomicBoolean(true);
        List<EngineStats> samples = new ArrayList<>();
        Thread sampler = Thread.ofPlatform().start(() -> {
            while (sampling.get()) {
                EngineStats s = engine.stats();
                synchronized (samples) {
                    samples.add(s);
                }
                Thread.onSpinWait();
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        List<CompletableFuture<HttpResponse<String>>> futures = new ArrayList<>();
        try {
            for (int i = 0; i < BURST; i++) {
                HttpRequest r = HttpRequest.newBuilder(URI.create(ApiClient.base() + "/v1/completions"))
                        .header("Content-Type", "application/json").timeout(Duration.ofMinutes(2))
                        .POST(HttpRequest.BodyPublishers.ofString(body)).build();
                futures.add(http.sendAsync(r, HttpResponse.BodyHandlers.ofString()));
            }
            CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new)).get(3, TimeUnit.MINUTES);
        } finally {
            sampling.set(false);
            sampler.join();
            pool.shutdownNow();
        }
        AtomicInteger admitted = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        for (var f : futures) {
            HttpResponse<String> r = f.get();
            if (r.statusCode() == 429) {
                refused.incrementAndGet();
                assertEquals("1", r.headers().firstValue("Retry-After").orElse(null));
                JsonNode error = ApiClient.parse(r.body()).get("error");
                assertEquals("rate_limit_error", error.get("type").asText(), r.body());
                assertEquals("rate_limit_exceeded", error.get("code").asText(), r.body());
            } else {
                assertEquals(200, r.statusCode(), r.body());
                admitted.incrementAndGet();
                List<JsonNode> events = ApiClient.sseJson(r.body()); // ends with [DONE]
                assertEquals("length", ApiClient.finishReason(events, 0), r.body());
                for (JsonNode e : events) {
                    assertTrue(e.path("error").isMissingNode(), "an admitted stream failed: " + e);
                }
            }
        }
        assertEquals(BURST, admitted.get() + refused.get());
        assertTrue(refused.get() > 0, "a burst of " + BURST + " against room for " + (RUNNING + QUEUED)
                + " refused nothing");
        assertTrue(admitted.get() >= RUNNING, "admitted " + admitted.get());

        // Each sequence holds at most ceil(context / page) pages in each of the two pools.
        int pageBound = RUNNING * 2 * ((CONTEXT + PAGE - 1) / PAGE);
        synchronized (samples) {
            assertTrue(samples.size() > 10, "samples " + samples.size());
            for (EngineStats s : samples) {
                assertTrue(s.running() <= RUNNING, s.toString());
                assertTrue(s.queued() <= QUEUED, s.toString());
                assertTrue(s.kvUsage() >= 0 && s.kvUsage() <= 1.0, s.toString());
                assertTrue(s.kvPagesInUse() <= pageBound, s + " > " + pageBound);
            }
        }
        ApiClient.awaitIdle(engine);
        EngineStats after = engine.stats();
        assertEquals(0, after.kvPagesInUse());
        assertEquals(0.0, after.kvUsage());
    }
}
