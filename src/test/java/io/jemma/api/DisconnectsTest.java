package io.jemma.api;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jemma.engine.InferenceEngine;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.RestAssured;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * 200 streams, 50 at a time, each closed by its client (a raw socket, closed plainly or reset) after a
 * random number of SSE events, while a few greedy streams run to completion beside them: every KV page
 * comes back, jemma_aborted_requests_total rises by exactly the number closed (each had its first event,
 * so each reached the engine), and the streams left alone write what they write when run alone.
 */
@QuarkusTest
class DisconnectsTest {
    static final int CANCELLED = 200;
    static final int AT_A_TIME = 50;
    static final int KEPT = 4;

    @Inject
    InferenceEngine engine;

    @Inject
    MeterRegistry registry;

    double aborted() {
        return registry.find("jemma_aborted_requests").counters().stream().mapToDouble(Counter::count).sum();
    }

    /** Opens a stream on a raw socket, reads {@code events} SSE events, then closes (or resets) it. */
    static void openAndDrop(String body, int events, boolean reset) throws Exception {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress("127.0.0.1", RestAssured.port), 10_000);
            socket.setSoTimeout(60_000);
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
            out.write(bytes);
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(),
                    StandardCharsets.ISO_8859_1));
            String status = in.readLine();
            if (status == null || !status.startsWith("HTTP/1.1 200")) {
                throw new AssertionError("status " + status);
            }
            int seen = 0;
            String line;
            while (seen < events && (line = in.readLine()) != null) {
                if (line.startsWith("data: ")) {
                    if (line.equals("data: [DONE]")) {
                        throw new AssertionError("the stream ended before it was closed");
                    }
                    seen++;
                }
            }
            if (seen < events) {
                throw new AssertionError("the connection ended after " + seen + " events");
            }
            if (reset) {
                socket.setSoLinger(true, 0);
            }
        }
    }

    static ObjectNode kept(int i) {
        return ApiClient.completion("Kept stream number " + i + " says").put("max_tokens", 48)
                .put("temperature", 0).put("stream", true);
    }

    @Test
    void closedStreamsFreeEverythingAndCountAsAborted() throws Exception {
        ApiClient.awaitLoaded(engine);
        ApiClient.awaitIdle(engine);
        double abortedBefore = aborted();
        // Long enough that no stream can end on its own before its client closes it.
        String longBody = ApiClient.completion("Disconnect me").put("stream", true).put("max_tokens", 3000)
                .put("min_tokens", 3000).toString();
        Random random = new Random(42);
        ExecutorService pool = Executors.newFixedThreadPool(AT_A_TIME + KEPT);
        try {
            List<Future<String>> keptRuns = new ArrayList<>();
            for (int i = 0; i < KEPT; i++) {
                int n = i;
                keptRuns.add(pool.submit(() -> {
                    Thread.sleep(50L * n);
                    return ApiClient.streamedText(ApiClient.sseJson(ApiClient.post("/v1/completions", kept(n)).body()), 0);
                }));
            }
            AtomicInteger closed = new AtomicInteger();
            List<Future<?>> drops = new ArrayList<>();
            java.util.concurrent.Semaphore slots = new java.util.concurrent.Semaphore(AT_A_TIME);
            for (int i = 0; i < CANCELLED; i++) {
                int events = 1 + random.nextInt(20);
                boolean reset = random.nextBoolean();
                slots.acquire();
                drops.add(pool.submit(() -> {
                    try {
                        openAndDrop(longBody, events, reset);
                        closed.incrementAndGet();
                    } finally {
                        slots.release();
                    }
                    return null;
                }));
            }
            for (Future<?> f : drops) {
                f.get(3, TimeUnit.MINUTES);
            }
            List<String> together = new ArrayList<>();
            for (Future<String> f : keptRuns) {
                together.add(f.get(3, TimeUnit.MINUTES));
            }
            assertEquals(CANCELLED, closed.get());

            ApiClient.awaitIdle(engine);
            ApiClient.await("the aborts to be counted", () -> aborted() - abortedBefore >= CANCELLED);
            assertEquals(CANCELLED, aborted() - abortedBefore, 0.0);
            assertEquals(0, engine.stats().kvPagesInUse());

            for (int i = 0; i < KEPT; i++) {
                String alone = ApiClient.streamedText(ApiClient.sseJson(ApiClient.post("/v1/completions", kept(i)).body()), 0);
                assertEquals(alone, together.get(i), "kept stream " + i + " changed beside the disconnects");
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
