package io.jemma.bench;

import io.jemma.engine.InferenceEngine;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

import java.io.PrintStream;
import java.net.URI;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The accuracy gate: the server on its embedded trained model answers a slice of the held-out test set
 * (src/test/resources/eval/test.jsonl, never trained on) through real HTTP, greedy, several requests at
 * once; exact-match accuracy must stay at 95% or more. Every change to the forward pass, the kernels, the
 * scheduler or the tokenizer must keep it.
 */
@QuarkusTest
@TestProfile(EmbeddedModelAccuracyTest.EmbeddedDefault.class)
class EmbeddedModelAccuracyTest {
    /** Every other item: 30 of each of the 8 tasks. */
    static final int STRIDE = 1;
    static final double MIN_ACCURACY = 0.95;

    /** The server as it starts on a fresh clone: no model path, so the embedded model. */
    public static class EmbeddedDefault implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("jemma.model-path", "");
        }
    }

    @Inject
    InferenceEngine engine;

    @TestHTTPResource("/")
    URL root;

    @Test
    void greedyAccuracyOnHeldOutTasksIsAtLeast95Percent() throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (!engine.loaded() && engine.loadFailure().isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertTrue(engine.loaded(), "the embedded model did not load: " + engine.loadFailure());
        assertEquals("jemma-embedded", engine.model().id());

        List<EvalItem> items = EvalItem.slice(EvalItem.load(EvalItem.TEST_SET), STRIDE, 0);
        String base = root.toString().endsWith("/") ? root.toString().substring(0, root.toString().length() - 1)
                : root.toString();
        var settings = new EvalRunner.Settings(URI.create(base), null, 8, 64, null);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        EvalReport report = EvalRunner.run(settings, items, out);
        out.print(report.table());
        out.print(report.mistakes(20));
        assertEquals(0, report.failed(), "failed requests");
        assertEquals(480, report.items());
        assertTrue(report.accuracy() >= MIN_ACCURACY, String.format("accuracy %.4f < %.2f on %d items; mistakes:%n%s",
                report.accuracy(), MIN_ACCURACY, report.items(), report.mistakes(20)));
    }
}
