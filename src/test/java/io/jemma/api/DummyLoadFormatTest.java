package io.jemma.api;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import io.jemma.engine.InferenceEngine;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code jemma.load-format=dummy} with a model directory that holds only config.json: the weights come from
 * the dummy generator at the config's shapes, the tokenizer from the embedded model, and the server
 * serves (on the CPU here; the GPU generates the weights on the device).
 */
@QuarkusTest
@TestProfile(DummyLoadFormatTest.Dummy.class)
class DummyLoadFormatTest {

    public static class Dummy implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            try {
                Path dir = Path.of(DummyLoadFormatTest.class.getResource("/dummy-config").toURI());
                return Map.of("jemma.load-format", "dummy", "jemma.model-path", dir.toString(), "jemma.device", "cpu",
                        "jemma.dummy-seed", "42");
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    @Inject
    InferenceEngine engine;

    @Test
    void aConfigOnlyDirectoryServesWithDummyWeights() {
        ApiClient.awaitLoaded(engine);
        assertEquals("dummy-config", engine.model().id());
        JsonNode r = ApiClient.postJson("/v1/completions", ApiClient.completion("Hello").put("model", "dummy-config").put("max_tokens", 6)
                .put("ignore_eos", true));
        assertEquals(6, r.at("/usage/completion_tokens").asInt(), r.toString());
        assertEquals("length", r.at("/choices/0/finish_reason").asText());
        ApiClient.awaitIdle(engine);
        assertEquals(0, engine.stats().kvPagesInUse());
    }
}
