package io.jemma.api;

import io.jemma.engine.InferenceEngine;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;

import static io.jemma.api.ApiKeyTest.assertUnauthorized;
import static io.jemma.api.ApiKeyTest.send;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code jemma.api-key-protects-metrics=true}: /q/metrics needs the key too; health stays open. */
@QuarkusTest
@TestProfile(ApiKeyMetricsTest.ProtectedMetrics.class)
class ApiKeyMetricsTest {
    static final String KEY = "sk-jemma-metrics-key-42";

    public static class ProtectedMetrics implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("jemma.api-key", KEY, "jemma.api-key-protects-metrics", "true");
        }
    }

    @Inject
    InferenceEngine engine;

    @Test
    void metricsNeedTheKeyHealthDoesNot() {
        ApiClient.awaitLoaded(engine);
        assertUnauthorized(send("GET", "/q/metrics", null, null));
        assertUnauthorized(send("GET", "/q/metrics", "Bearer wrong", null));
        HttpResponse<String> r = send("GET", "/q/metrics", "Bearer " + KEY, null);
        assertEquals(200, r.statusCode());
        assertTrue(r.body().contains("jemma_"), "the engine's meters are there");
        for (String path : List.of("/q/health/live", "/q/health/ready", "/health_generate")) {
            assertEquals(200, send("GET", path, null, null).statusCode(), path);
        }
        assertUnauthorized(send("GET", "/v1/models", null, null));
        assertEquals(200, send("GET", "/v1/models", "Bearer " + KEY, null).statusCode());
    }
}
