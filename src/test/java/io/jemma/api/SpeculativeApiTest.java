package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import io.jemma.engine.InferenceEngine;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The served embedded model (tiny-31b) with its golden assistant as the draft model, configured the way users
 * do it (only jemma.speculative-draft-model-path: NEXTN 3-1-4): requests stream and finish, a greedy request
 * gives the same text alone and under load, pages come back, and the jemma_spec_* meters are exported.
 */
@QuarkusTest
@TestProfile(SpeculativeApiTest.WithAssistant.class)
class SpeculativeApiTest {

    public static class WithAssistant implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            try {
                Path dir = Path.of(SpeculativeApiTest.class.getResource("/golden/tiny-31b-assistant").toURI());
                return Map.of("jemma.speculative-draft-model-path", dir.toString());
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    @Inject
    InferenceEngine engine;

    @Test
    void speculativeDecodingServesRequestsAndExportsItsMeters() {
        ApiClient.awaitLoaded(engine);
        var greedy = ApiClient.completion("The scheduler admits it").put("max_tokens", 24).put("temperature", 0);
        String alone = ApiClient.postJson("/v1/completions", greedy).at("/choices/0/text").asText();
        List<CompletableFuture<JsonNode>> load = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            var other = ApiClient.completion("Prompt number " + i + " of a few").put("max_tokens", 8 + 3 * i)
                    .put("temperature", i % 2 == 0 ? 0 : 0.8).put("seed", i);
            load.add(CompletableFuture.supplyAsync(() -> ApiClient.postJson("/v1/completions", other)));
        }
        String busy = ApiClient.postJson("/v1/completions", greedy).at("/choices/0/text").asText();
        load.forEach(f -> assertTrue(f.join().at("/usage/completion_tokens").asInt() > 0));
        assertEquals(alone, busy, "greedy text does not depend on what else is batched");
        List<JsonNode> events = ApiClient.sseJson(ApiClient.post("/v1/completions",
                greedy.deepCopy().put("stream", true)).body());
        assertEquals(alone, ApiClient.streamedText(events, 0));
        ApiClient.awaitIdle(engine);
        assertEquals(0, engine.stats().kvPagesInUse());

        String metrics = given().get("/q/metrics").then().statusCode(200).extract().asString();
        for (String series : List.of("jemma_spec_accept_length{", "jemma_spec_accept_rate{",
                "jemma_spec_accept_length_per_round_count{", "jemma_spec_draft_seconds_count{",
                "jemma_spec_verify_seconds_count{")) {
            assertTrue(metrics.contains(series), series + " missing from /q/metrics");
        }
    }
}
