package io.jemma.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jemma.bench.EvalItem;
import io.jemma.bench.EvalReport;
import io.jemma.bench.EvalRunner;
import org.junit.jupiter.api.Test;

import java.io.PrintStream;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packaged application with no model configured serves the trained model it carries (the jar's
 * embedded-model resources, not target/classes), under its name, and it answers.
 */
class EmbeddedModelIT {

    @Test
    void thePackagedServerAnswersWithItsEmbeddedModel() throws Exception {
        ServerProcess.assumePackagedAppIsCurrent();
        try (ServerProcess server = ServerProcess.start("embedded-it", "jemma.model-path=")) {
            HttpResponse<String> models = server.http.send(HttpRequest.newBuilder(server.uri("/v1/models"))
                    .timeout(Duration.ofSeconds(10)).GET().build(), HttpResponse.BodyHandlers.ofString());
            JsonNode list = new ObjectMapper().readTree(models.body());
            assertEquals("jemma-embedded", list.at("/data/0/id").asText(), models.body());

            var items = EvalItem.slice(EvalItem.load(EvalItem.TEST_SET), 1, 16); // two of each task
            var settings = new EvalRunner.Settings(java.net.URI.create("http://127.0.0.1:" + server.port), null, 4, 64,
                    null);
            PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
            EvalReport report = EvalRunner.run(settings, items, out);
            out.print(report.table());
            assertEquals(0, report.failed(), report.mistakes(16));
            assertTrue(report.correct() >= 14, "the packaged embedded model answered " + report.correct()
                    + " of 16:\n" + report.mistakes(16));
        }
    }
}
