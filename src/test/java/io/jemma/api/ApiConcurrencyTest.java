package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jemma.engine.InferenceEngine;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import jakarta.inject.Inject;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static io.jemma.api.ApiClient.chat;
import static io.jemma.api.ApiClient.completion;
import static io.jemma.api.ApiClient.post;
import static io.jemma.api.ApiClient.sseJson;
import static io.jemma.api.ApiClient.streamedText;
import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Many clients at once, and clients that leave: batching must not change any request's output, and a
 * request whose client disconnects is aborted (counted in jemma_aborted_requests_total) and gives its KV
 * pages back.
 */
@QuarkusTest
class ApiConcurrencyTest {

    @Inject
    InferenceEngine engine;

    @BeforeEach
    void loaded() {
        ApiClient.awaitLoaded(engine);
        ApiClient.awaitIdle(engine);
    }

    /** What a stream produced: its text, finish reason and usage. */
    record Outcome(String text, String finishReason, int completionTokens) {
        static Outcome of(String body) {
            List<JsonNode> events = sseJson(body);
            return new Outcome(streamedText(events, 0), ApiClient.finishReason(events, 0),
                    events.getLast().at("/usage/completion_tokens").asInt());
        }
    }

    private static ObjectNode request(int i) {
        String words = "alpha beta gamma delta epsilon zeta eta theta ".repeat(1 + i % 5);
        ObjectNode body = i % 2 == 0 ? completion("Prompt " + i + ": " + words) : chat("Question " + i + "? " + words);
        body.put("temperature", 0).put("max_tokens", 3 + (i * 7) % 29).put("ignore_eos", i % 3 != 0)
                .put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        return body;
    }

    private static String path(int i) {
        return i % 2 == 0 ? "/v1/completions" : "/v1/chat/completions";
    }

    @Test
    void sixtyFourSimultaneousStreamsEachMatchTheirSoloRun() throws Exception {
        int count = 64;
        List<Outcome> solo = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            var r = post(path(i), request(i));
            assertEquals(200, r.statusCode(), r.body());
            solo.add(Outcome.of(r.body()));
        }
        long stepsBefore = engine.stats().steps();
        CountDownLatch start = new CountDownLatch(1);
        List<Future<Outcome>> together = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < count; i++) {
                int n = i;
                together.add(pool.submit(() -> {
                    start.await();
                    var r = post(path(n), request(n));
                    assertEquals(200, r.statusCode(), r.body());
                    return Outcome.of(r.body());
                }));
            }
            start.countDown();
            for (int i = 0; i < count; i++) {
                assertEquals(solo.get(i), together.get(i).get(), "request " + i + " changed when batched");
            }
        }
        // They really ran together: far fewer engine steps than tokens generated.
        int tokens = solo.stream().mapToInt(Outcome::completionTokens).sum();
        long steps = engine.stats().steps() - stepsBefore;
        assertTrue(steps < tokens, steps + " steps for " + tokens + " tokens");
        ApiClient.awaitIdle(engine);
        assertEquals(0, engine.stats().kvPagesInUse());
    }

    @Test
    void aStreamWhoseClientDisconnectsIsAbortedAndItsPagesComeBack() throws Exception {
        double before = abortedRequests();
        ObjectNode body = completion("Go on forever").put("max_tokens", 4000).put("ignore_eos", true)
                .put("stream", true);
        try (Socket socket = rawPost("/v1/completions", body.toString())) {
            InputStream in = socket.getInputStream();
            int events = 0;
            StringBuilder seen = new StringBuilder();
            while (events < 3) {
                int b = in.read();
                assertTrue(b >= 0, "the stream ended early: " + seen);
                seen.append((char) b);
                if (seen.toString().endsWith("data: ")) {
                    events++;
                }
            }
            assertTrue(engine.stats().running() >= 1);
        } // the client goes away mid-stream
        ApiClient.await("the abort to be counted", () -> abortedRequests() >= before + 1);
        ApiClient.awaitIdle(engine);
        assertEquals(0, engine.stats().kvPagesInUse());
    }

    @Test
    void aWaitingNonStreamedRequestWhoseClientDisconnectsIsAborted() throws Exception {
        double before = abortedRequests();
        ObjectNode body = chat("Go on forever").put("max_tokens", 4000).put("ignore_eos", true).put("n", 2);
        try (Socket ignored = rawPost("/v1/chat/completions", body.toString())) {
            ApiClient.await("both choices to run", () -> engine.stats().running() == 2);
        }
        ApiClient.await("both aborts to be counted", () -> abortedRequests() >= before + 2);
        ApiClient.awaitIdle(engine);
    }

    /** Sends a POST over a plain socket, so the test decides when the connection closes. */
    private static Socket rawPost(String path, String json) throws IOException {
        Socket socket = new Socket("127.0.0.1", RestAssured.port);
        byte[] body = json.getBytes(StandardCharsets.UTF_8);
        OutputStream out = socket.getOutputStream();
        out.write(("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        out.write(body);
        out.flush();
        return socket;
    }

    private static double abortedRequests() {
        String metrics = given().get("/q/metrics").then().statusCode(200).extract().asString();
        return metrics.lines().filter(l -> l.startsWith("jemma_aborted_requests_total"))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).sum();
    }
}
