package io.jemma.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The eval client against a stand-in server whose right and wrong answers are known. */
class EvalRunnerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    /** Answers from a table (with extra whitespace), wrong for "wrong", HTTP 500 for "fail"; counts rounds. */
    static final class StandIn implements AutoCloseable {
        final HttpServer server;
        final Map<String, String> answers = new ConcurrentHashMap<>();
        final List<JsonNode> bodies = new java.util.concurrent.CopyOnWriteArrayList<>();
        final AtomicInteger inFlight = new AtomicInteger();
        final AtomicInteger maxInFlight = new AtomicInteger();
        final AtomicInteger rounds = new AtomicInteger();
        final boolean metrics;

        StandIn(boolean metrics) throws IOException {
            this.metrics = metrics;
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
            server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
            server.createContext("/v1/models", e -> reply(e, 200, "{\"data\":[{\"id\":\"stand-in\"}]}"));
            server.createContext("/v1/chat/completions", this::chat);
            server.createContext("/q/metrics", e -> {
                if (!metrics) {
                    reply(e, 404, "");
                    return;
                }
                int r = rounds.get();
                reply(e, 200, "# TYPE jemma_spec_accept_length histogram\n"
                        + "jemma_spec_accept_length_bucket{model=\"stand-in\",le=\"+Inf\"} " + r + "\n"
                        + "jemma_spec_accept_length_count{model=\"stand-in\"} " + r + ".0\n"
                        + "jemma_spec_accept_length_sum{model=\"stand-in\"} " + (2.5 * r) + "\n"
                        + "jemma_num_running_reqs{model=\"stand-in\"} 0.0\n");
            });
            server.start();
        }

        URI base() {
            return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
        }

        private void chat(HttpExchange e) throws IOException {
            // Counted as in flight from the request's arrival until just before its answer is sent: inside the
            // client's own in-flight time, so a client that keeps to its concurrency never shows more here
            // (counting until after the answer was written let the client's next request overlap the count).
            int now = inFlight.incrementAndGet();
            maxInFlight.accumulateAndGet(now, Math::max);
            int status;
            String reply;
            try {
                JsonNode body = JSON.readTree(e.getRequestBody());
                bodies.add(body);
                Thread.sleep(5);
                String question = body.at("/messages/0/content").asText();
                String answer = answers.get(question);
                if (answer.equals("fail")) {
                    status = 500;
                    reply = "{\"error\":{\"message\":\"boom\"}}";
                } else {
                    rounds.addAndGet(2);
                    String text = answer.equals("wrong") ? "nope" : " " + answer + "\n";
                    status = 200;
                    reply = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
                            + JSON.writeValueAsString(text) + "}}],\"usage\":{\"completion_tokens\":3}}";
                }
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                return;
            } finally {
                inFlight.decrementAndGet();
            }
            reply(e, status, reply);
        }

        private static void reply(HttpExchange e, int status, String body) throws IOException {
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            e.getResponseHeaders().add("Content-Type", "application/json");
            e.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
            try (OutputStream out = e.getResponseBody()) {
                out.write(bytes);
            }
        }

        @Override
        public void close() {
            server.stop(0);
        }
    }

    private static List<EvalItem> items(Path dir, StandIn server) throws IOException {
        String[][] rows = {{"a", "add", "1"}, {"b", "add", "2"}, {"c", "add", "wrong"}, {"d", "sort", "x, y"},
                {"e", "sort", "fail"}, {"f", "sort", "z"}, {"g", "count", "0"}, {"h", "count", "3"}};
        StringBuilder jsonl = new StringBuilder();
        for (String[] r : rows) {
            String question = "question " + r[0];
            server.answers.put(question, r[2]);
            var node = JSON.createObjectNode().put("id", r[0]).put("task", r[1]);
            node.putArray("messages").addObject().put("role", "user").put("content", question);
            node.put("answer", r[2].equals("wrong") || r[2].equals("fail") ? "right" : r[2]);
            jsonl.append(node).append("\n\n");
        }
        Path file = dir.resolve("set.jsonl");
        Files.writeString(file, jsonl);
        return EvalItem.load(file);
    }

    @Test
    void scoresExactAnswersPerTaskWithGreedyRequestsAndTheAcceptLength(@TempDir Path dir) throws Exception {
        try (StandIn server = new StandIn(true)) {
            List<EvalItem> items = items(dir, server);
            assertEquals(8, items.size(), "blank lines are skipped");
            EvalReport report = EvalRunner.run(new EvalRunner.Settings(server.base(), null, 3, 32, null), items, QUIET);

            assertEquals("stand-in", report.model(), "the first of /v1/models");
            assertEquals(8, report.items());
            assertEquals(1, report.failed());
            assertEquals(6, report.correct(), "whitespace around an answer is no mistake; a wrong one and a failure are");
            assertEquals(0.75, report.accuracy(), 1e-12);
            assertEquals(Map.of("add", 2.0 / 3, "count", 1.0, "sort", 2.0 / 3), report.accuracyPerTask());
            assertEquals(7 * 3, report.completionTokens());
            assertEquals(2.5, report.acceptLength().orElseThrow(), 1e-12);
            assertTrue(server.maxInFlight.get() <= 3, "concurrency " + server.maxInFlight.get());
            for (JsonNode body : server.bodies) {
                assertEquals(0, body.get("temperature").asInt());
                assertEquals(32, body.get("max_tokens").asInt());
                assertEquals("stand-in", body.get("model").asText());
            }
            String table = report.table();
            assertTrue(table.contains("0.7500 (6/8)") && table.contains("Accept length:") && table.contains("2.500"),
                    table);
            assertTrue(report.mistakes(5).contains("c [add] expected \"right\", got \"nope\""), report.mistakes(5));
            assertEquals(0.75, report.json().get("accuracy").asDouble(), 1e-12);
        }
    }

    @Test
    void noSpeculationMetricsMeansNoAcceptLength(@TempDir Path dir) throws Exception {
        try (StandIn server = new StandIn(false)) {
            EvalReport report = EvalRunner.run(new EvalRunner.Settings(server.base(), "named", 8, 16, null),
                    items(dir, server), QUIET);
            assertEquals("named", report.model());
            assertFalse(report.acceptLength().isPresent());
            assertTrue(report.table().contains("n/a"));
        }
    }

    @Test
    void acceptLengthFromAGaugeOrNothing() {
        assertEquals(3.25, PrometheusText.acceptLength("", "sglang:spec_accept_length{m=\"x\"} 3.25\n").orElseThrow());
        assertFalse(PrometheusText.acceptLength("a_count 1\na_sum 2\n", "a_count 2\na_sum 4\n").isPresent());
        assertFalse(PrometheusText.acceptLength("x_accept_length_count 5\nx_accept_length_sum 10\n",
                "x_accept_length_count 5\nx_accept_length_sum 10\n").isPresent(), "no round between the scrapes");
    }

    @Test
    void slicesKeepEveryTaskAndBadLinesAreNamed(@TempDir Path dir) throws IOException {
        List<EvalItem> test = EvalItem.load(EvalItem.TEST_SET);
        assertEquals(480, test.size());
        var firstTasks = EvalItem.slice(test, 1, 16).stream().map(EvalItem::task).distinct().count();
        assertEquals(8, firstTasks, "the test set interleaves its 8 tasks");
        assertEquals(160, EvalItem.slice(test, 3, 0).size());
        assertEquals(8, EvalItem.slice(test, 3, 0).stream().map(EvalItem::task).distinct().count());

        Path bad = dir.resolve("bad.jsonl");
        Files.writeString(bad, "{\"id\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"answer\":\"a\"}\n{\"id\":\"y\"}\n");
        var e = assertThrows(IllegalArgumentException.class, () -> EvalItem.load(bad));
        assertTrue(e.getMessage().contains("bad.jsonl:2"), e.getMessage());
        assertTrue(new EvalItem("i", "t", JSON.createArrayNode(), "42").isAnsweredBy(" 42\n"));
        assertFalse(new EvalItem("i", "t", JSON.createArrayNode(), "42").isAnsweredBy("42."));
    }
}
