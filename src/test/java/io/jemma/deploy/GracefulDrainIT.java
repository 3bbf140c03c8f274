package io.jemma.deploy;

import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SIGTERM on the packaged application (a separate process; {@code Process.destroy()} sends SIGTERM):
 * readiness goes down, a new request gets 503 with Retry-After, the streams already running finish with
 * a finish_reason and [DONE], and the process then exits with status 0. With a drain timeout shorter
 * than the streams, the process still exits, within the timeout plus quarkus.shutdown.timeout; a second
 * SIGTERM ends it at once (143).
 *
 * <p>Runs after {@code package} (failsafe): {@code ./mvnw verify -DskipITs=false -Dit.test=GracefulDrainIT}.
 */
class GracefulDrainIT {
    /** The embedded model writes several hundred tokens a second: 3000 each keeps 4 streams busy for seconds. */
    private static final int LONG = 3000;
    private static final int STREAMS = 4;

    @Test
    void sigtermDrainsRunningStreamsRefusesNewOnesAndExitsZero() throws Exception {
        ServerProcess.assumePackagedAppIsCurrent();
        try (ServerProcess server = ServerProcess.start("drain-it", "jemma.drain-timeout=60s")) {
            List<ServerProcess.Stream> streams = new ArrayList<>();
            for (int i = 0; i < STREAMS; i++) {
                streams.add(server.stream(LONG));
            }
            for (ServerProcess.Stream s : streams) {
                assertTrue(s.firstChunk.await(60, TimeUnit.SECONDS), "a stream started");
                assertTrue(s.error == null && s.status == 200 && s.chunks > 0, "stream running: " + s);
            }

            long sigterm = System.nanoTime();
            server.process.destroy(); // SIGTERM

            // Readiness goes down at once...
            long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            int ready;
            while ((ready = server.status("/q/health/ready")) == 200 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertEquals(503, ready, "readiness during the drain");
            // ...and a new request is refused while the old streams still run.
            HttpResponse<String> refused = server.chat(8);
            long refusedAt = System.nanoTime();
            assertEquals(503, refused.statusCode(), "a request during the drain: " + refused.body());
            assertTrue(refused.headers().firstValue("Retry-After").isPresent(), "503 with Retry-After");
            assertTrue(refused.body().contains("service_unavailable"), refused.body());
            long stillRunning = streams.stream().filter(s -> s.endedNanos == 0 || s.endedNanos > refusedAt).count();
            assertTrue(stillRunning > 0, "the 503 came while streams were still running (during the drain)");

            for (ServerProcess.Stream s : streams) {
                s.finished.get(90, TimeUnit.SECONDS);
                assertTrue(s.completed(), "a stream running at SIGTERM finished: " + s);
                assertEquals("length", s.finishReason, "it ran to max_tokens: " + s);
            }
            assertTrue(server.process.waitFor(30, TimeUnit.SECONDS), "the process exited after the drain");
            assertEquals(0, server.process.exitValue(), "exit status after a drained SIGTERM\n" + server.logText());
            String log = server.logText();
            assertTrue(log.contains("SIGTERM: draining (" + STREAMS + " running"), log);
            assertTrue(log.contains("drained in"), log);
            System.out.printf("drain: %d streams finished, exit %d, %.1f s after SIGTERM%n", STREAMS,
                    server.process.exitValue(), (System.nanoTime() - sigterm) / 1e9);
        }
    }

    @Test
    void aSecondSigtermExitsAtOnce() throws Exception {
        ServerProcess.assumePackagedAppIsCurrent();
        try (ServerProcess server = ServerProcess.start("drain-twice-it", "jemma.drain-timeout=60s")) {
            ServerProcess.Stream stream = server.stream(4000);
            assertTrue(stream.firstChunk.await(60, TimeUnit.SECONDS), "a stream started");
            server.process.destroy();
            long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (server.status("/q/health/ready") == 200 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            long second = System.nanoTime();
            server.process.destroy();
            assertTrue(server.process.waitFor(10, TimeUnit.SECONDS), "the second SIGTERM ended the process");
            double seconds = (System.nanoTime() - second) / 1e9;
            assertEquals(143, server.process.exitValue(), server.logText());
            assertTrue(seconds < 5, "exited " + seconds + " s after the second SIGTERM");
        }
    }

    @Test
    void aDrainTimeoutBoundsTheShutdown() throws Exception {
        ServerProcess.assumePackagedAppIsCurrent();
        try (ServerProcess server = ServerProcess.start("drain-timeout-it", "jemma.drain-timeout=1s",
                "quarkus.shutdown.timeout=1s")) {
            List<ServerProcess.Stream> streams = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                streams.add(server.stream(4000));
            }
            for (ServerProcess.Stream s : streams) {
                assertTrue(s.firstChunk.await(60, TimeUnit.SECONDS), "a stream started");
            }
            long sigterm = System.nanoTime();
            server.process.destroy();
            assertTrue(server.process.waitFor(30, TimeUnit.SECONDS), "the process exited");
            double seconds = (System.nanoTime() - sigterm) / 1e9;
            assertTrue(seconds < 10, "exited " + seconds + " s after SIGTERM with a 1 s drain timeout");
            assertEquals(0, server.process.exitValue(), server.logText());
            assertTrue(server.logText().contains("drain timeout after"), server.logText());
            long cut = 0;
            for (ServerProcess.Stream s : streams) {
                s.finished.get(30, TimeUnit.SECONDS);
                if (!s.completed()) {
                    cut++;
                }
            }
            assertFalse(cut == 0, "8 streams of 4000 tokens cannot all finish within 2 s; cut: " + cut);
            System.out.printf("drain timeout: exit %d after %.1f s, %d of 8 streams cut%n",
                    server.process.exitValue(), seconds, cut);
        }
    }
}
