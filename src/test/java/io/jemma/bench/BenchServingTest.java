package io.jemma.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole benchmark against {@link FakeOpenAiServer}, whose schedule is known. Delays are 20-100 ms and
 * the bounds generous on the slow side only where a loaded machine can only add time, so the tests do not
 * depend on machine speed.
 */
class BenchServingTest {

    private static final String[] QUIET = {"--warmup-requests", "0", "--random-input-len", "8",
        "--random-range-ratio", "1", "--seed", "7"};

    private static BenchServing.Report run(FakeOpenAiServer server, String... more) throws Exception {
        List<String> argv = new ArrayList<>(List.of("--base-url", server.baseUrl().toString()));
        argv.addAll(List.of(QUIET));
        argv.addAll(List.of(more));
        var out = new ByteArrayOutputStream();
        try (var print = new PrintStream(out, true, StandardCharsets.UTF_8)) {
            return BenchServing.run(BenchArgs.parse(argv.toArray(String[]::new)), print);
        }
    }

    @Test
    void figuresFollowTheServersSchedule() throws Exception {
        // 4 requests at once, each: first text at 100 ms, then 4 more 50 ms apart -> E2E ~300 ms, TPOT ~50 ms.
        try (var server = new FakeOpenAiServer(FakeOpenAiServer.Script.streaming(100, 50))) {
            var report = run(server, "--num-prompts", "4", "--random-output-len", "5");
            BenchMetrics m = report.metrics();

            assertEquals(4, m.completed());
            assertEquals(0, m.failed());
            assertEquals(20, m.totalOutput(), "output tokens come from the server's usage");
            assertEquals(4 * 8, m.totalInput(), "input tokens come from the server's usage (8 words each)");

            // Lower bounds the server guarantees (it sleeps before each chunk, after the client started its
            // clock); upper bounds generous, since a loaded machine only adds time.
            assertBetween(100, 400, m.ttftMs().mean(), "mean TTFT");
            assertBetween(100, 400, m.ttftMs().median(), "median TTFT");
            assertBetween(100, 600, m.ttftMs().p99(), "p99 TTFT");
            for (RequestResult r : report.run().results()) {
                assertEquals(5, r.chunks());
                assertEquals(4, r.itl().length);
                double lastText = r.ttft() + java.util.Arrays.stream(r.itl()).sum();
                assertTrue(lastText >= 0.3, "the fifth token cannot come before 300 ms: " + lastText);
                assertTrue(r.latency() >= lastText);
            }
            // A late read of one chunk shortens one gap and lengthens the next, so the ITL and TPOT lower bounds
            // sit well below the nominal 50 ms.
            assertBetween(10, 200, m.itlMs().mean(), "mean ITL");
            assertBetween(10, 200, m.itlMs().median(), "median ITL");
            assertBetween(10, 250, m.tpotMs().mean(), "mean TPOT");
            assertBetween(300, 1500, m.e2eMs().mean(), "mean E2E");
            assertTrue(m.e2eMs().p99() >= m.e2eMs().median() && m.e2eMs().p90() <= m.e2eMs().max() + 1e-9);

            assertBetween(0.3, 2.0, m.durationS(), "duration");
            assertEquals(4 / m.durationS(), m.requestThroughput(), 1e-9);
            assertEquals(20 / m.durationS(), m.outputThroughput(), 1e-9);
            assertEquals(32 / m.durationS(), m.inputThroughput(), 1e-9);
            assertEquals(52 / m.durationS(), m.totalThroughput(), 1e-9);
            // Four overlapping requests: the sum of their E2E over the wall time is near 4 and never above it.
            double sumE2e = report.run().results().stream().mapToDouble(RequestResult::latency).sum();
            assertEquals(sumE2e / m.durationS(), m.concurrency(), 1e-9);
            assertBetween(1.5, 4.0 + 1e-9, m.concurrency(), "concurrency");
            assertBetween(3, 4, m.peakConcurrent(), "peak concurrent requests");
            assertBetween(1, 20, m.peakOutputThroughput(), "peak output tokens in one second");
        }
    }

    @Test
    void maxConcurrencyOneSendsOneAtATime() throws Exception {
        // 3 requests of ~90 ms each (50 ms, then 2 x 20 ms) behind a semaphore of 1.
        try (var server = new FakeOpenAiServer(FakeOpenAiServer.Script.streaming(50, 20))) {
            BenchMetrics m = run(server, "--num-prompts", "3", "--random-output-len", "3", "--max-concurrency", "1")
                    .metrics();
            assertEquals(3, m.completed());
            assertTrue(m.durationS() >= 0.27, "three requests of 90 ms in a row, not " + m.durationS());
            assertBetween(0.5, 1.0 + 1e-9, m.concurrency(), "concurrency");
            assertEquals(1, m.peakConcurrent());
            assertBetween(50, 300, m.ttftMs().mean(), "TTFT excludes the wait for a slot");
        }
    }

    @Test
    void httpErrorsAndErrorEventsCountAsFailed() throws Exception {
        var ok = FakeOpenAiServer.Script.streaming(0, 5);
        try (var server = new FakeOpenAiServer(i -> switch (i % 3) {
            case 1 -> ok.status(500);
            case 2 -> ok.errorAfter(2);
            default -> ok;
        })) {
            var report = run(server, "--num-prompts", "6", "--random-output-len", "4", "--max-concurrency", "1");
            BenchMetrics m = report.metrics();
            assertEquals(2, m.completed());
            assertEquals(4, m.failed());
            assertEquals(8, m.totalOutput(), "failed requests add no tokens");
            List<String> errors = report.run().results().stream().filter(r -> !r.success())
                    .map(RequestResult::error).toList();
            assertEquals(2, errors.stream().filter(e -> e.startsWith("HTTP 500: scripted failure")).count(), errors::toString);
            assertEquals(2, errors.stream().filter(e -> e.contains("scripted error event")).count(), errors::toString);
        }
    }

    @Test
    void parsesDataFramingWithoutTheSpace() throws Exception {
        try (var server = new FakeOpenAiServer(FakeOpenAiServer.Script.streaming(0, 5).framing("data:"))) {
            var report = run(server, "--num-prompts", "2", "--random-output-len", "3");
            assertEquals(2, report.metrics().completed());
            assertEquals("tok0 tok1 tok2 ", report.run().results().getFirst().generatedText());
        }
    }

    @Test
    void completionsApiReadsTheTextField() throws Exception {
        try (var server = new FakeOpenAiServer(FakeOpenAiServer.Script.streaming(0, 5))) {
            var report = run(server, "--backend-api", "completions", "--num-prompts", "2", "--random-output-len", "3");
            assertEquals(2, report.metrics().completed());
            assertEquals("tok0 tok1 tok2 ", report.run().results().getFirst().generatedText());
            assertTrue(server.bodies().getFirst().path("prompt").isTextual());
        }
    }

    @Test
    void requestsAskForAStreamWithUsageAndTheExactLength() throws Exception {
        try (var server = new FakeOpenAiServer(FakeOpenAiServer.Script.streaming(0, 1))) {
            var report = run(server, "--num-prompts", "1", "--random-output-len", "3", "--warmup-requests", "2");
            assertEquals(FakeOpenAiServer.MODEL, report.model(), "the model comes from GET /v1/models");
            assertEquals(3, server.bodies().size(), "two warmup requests and one measured");
            JsonNode warm = server.bodies().getFirst();
            JsonNode body = server.bodies().getLast();
            assertEquals(3, body.path("max_tokens").asInt());
            assertEquals(3, warm.path("max_tokens").asInt(), "warmup asks for min(output, 32)");
            assertEquals(FakeOpenAiServer.MODEL, body.path("model").asText());
            assertTrue(body.path("stream").asBoolean());
            assertTrue(body.path("stream_options").path("include_usage").asBoolean());
            assertTrue(body.path("ignore_eos").asBoolean());
            assertEquals(0.0, body.path("temperature").asDouble());
            assertEquals("user", body.path("messages").path(0).path("role").asText());
            assertEquals(report.run().results().getFirst().prompt().text(),
                    body.path("messages").path(0).path("content").asText());
            assertEquals(1, report.metrics().completed(), "warmup requests are not in the figures");
        }
    }

    @Test
    void theDurationLimitStopsAServerThatNeverFinishes() throws Exception {
        try (var server = new FakeOpenAiServer(FakeOpenAiServer.Script.streaming(60_000, 0))) {
            long start = System.nanoTime();
            var report = run(server, "--num-prompts", "3", "--random-output-len", "2", "--duration-limit", "0.5");
            double seconds = (System.nanoTime() - start) / 1e9;
            assertTrue(seconds < 5, "stopped after " + seconds + " s");
            assertTrue(report.run().hitDeadline());
            assertEquals(0, report.metrics().completed());
            assertEquals(3, report.metrics().failed());
        }
    }

    @Test
    void writesTheTableAndSglangsJsonKeys(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("results.jsonl");
        try (var server = new FakeOpenAiServer(FakeOpenAiServer.Script.streaming(0, 2))) {
            var report = run(server, "--num-prompts", "2", "--random-output-len", "3", "--output-file", file.toString(),
                    "--output-details");
            assertTrue(report.table().contains("============ Serving Benchmark Result ============\n"));
            assertTrue(report.table().contains(String.format("%-40s %-10s%n", "Successful requests:", 2)));
            JsonNode json = new ObjectMapper().readTree(Files.readString(file));
            for (String key : List.of("completed", "duration", "total_input_tokens", "total_output_tokens",
                    "request_throughput", "input_throughput", "output_throughput", "concurrency", "mean_ttft_ms",
                    "median_ttft_ms", "std_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "mean_itl_ms", "p95_itl_ms",
                    "mean_e2e_latency_ms", "p90_e2e_latency_ms", "p99_e2e_latency_ms", "itls", "ttfts")) {
                assertTrue(json.has(key), key);
            }
            assertEquals(2, json.path("completed").asInt());
            assertEquals(6, json.path("total_output_tokens").asInt());
            assertEquals("inf", json.path("request_rate").asText());
        }
    }

    private static void assertBetween(double lo, double hi, double actual, String what) {
        assertTrue(actual >= lo && actual <= hi, what + " = " + actual + ", expected in [" + lo + ", " + hi + "]");
    }
}
