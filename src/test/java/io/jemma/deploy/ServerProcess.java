package io.jemma.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;

/**
 * The packaged application (target/quarkus-app) started as a separate process on a free port of
 * 127.0.0.1, with an OpenAI streaming client: what the drain test and its kin run against.
 */
final class ServerProcess implements AutoCloseable {
    static final Path JAR = Manifests.ROOT.resolve("target/quarkus-app/quarkus-run.jar");
    private static final ObjectMapper JSON = new ObjectMapper();

    final int port;
    final Process process;
    final Path log;
    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    private ServerProcess(int port, Process process, Path log) {
        this.port = port;
        this.process = process;
        this.log = log;
    }

    /**
     * Skips the calling test unless target/quarkus-app is there and newer than every compiled class: it
     * runs after {@code package} (failsafe), and a {@code -Dtest=...} selection that runs it earlier, in
     * surefire, tests nothing stale.
     */
    static void assumePackagedAppIsCurrent() throws IOException {
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isRegularFile(JAR),
                JAR + " is missing: run ./mvnw package first (./mvnw verify -DskipITs=false runs this after it)");
        Path appJar;
        try (var jars = Files.list(Manifests.ROOT.resolve("target/quarkus-app/app"))) {
            appJar = jars.filter(p -> p.toString().endsWith(".jar")).findFirst().orElseThrow();
        }
        var packaged = Files.getLastModifiedTime(appJar);
        try (var classes = Files.walk(Manifests.ROOT.resolve("target/classes"))) {
            var newer = classes.filter(p -> p.toString().endsWith(".class"))
                    .filter(p -> {
                        try {
                            return Files.getLastModifiedTime(p).compareTo(packaged) > 0;
                        } catch (IOException e) {
                            return true;
                        }
                    }).findFirst();
            org.junit.jupiter.api.Assumptions.assumeTrue(newer.isEmpty(), () -> "target/quarkus-app is older than "
                    + newer.get() + ": run ./mvnw package first (./mvnw verify -DskipITs=false runs this after it)");
        }
    }

    /** The golden random-weight checkpoint the deploy tests serve: fast, and it never stops on its own. */
    static final Path TINY_MODEL = Manifests.ROOT.resolve("src/test/resources/golden/tiny-31b");
    static final String TINY_MODEL_NAME = "tiny-31b";

    /**
     * Starts the packaged server with extra -D settings and waits until it is ready. It serves
     * {@link #TINY_MODEL} unless a setting names another {@code jemma.model-path} (empty: the embedded model).
     */
    static ServerProcess start(String name, String... systemProperties) throws Exception {
        if (!Files.isRegularFile(JAR)) {
            throw new IllegalStateException(JAR + " is missing: run ./mvnw package (integration tests run after it)");
        }
        int port;
        try (ServerSocket s = new ServerSocket(0, 0, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Dquarkus.http.host=127.0.0.1", "-Dquarkus.http.port=" + port,
                "-Djemma.model-path=" + TINY_MODEL.toAbsolutePath()));
        for (String p : systemProperties) {
            command.add("-D" + p);
        }
        command.addAll(List.of("-jar", JAR.toString()));
        Path log = Manifests.ROOT.resolve("target/" + name + ".log");
        Process process = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        ServerProcess server = new ServerProcess(port, process, log);
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (server.status("/q/health/ready") != 200) {
            if (!process.isAlive()) {
                throw new IllegalStateException("the server exited with " + process.exitValue() + ":\n" + server.logText());
            }
            if (System.nanoTime() > deadline) {
                server.close();
                throw new IllegalStateException("the server did not get ready in 120s:\n" + server.logText());
            }
            Thread.sleep(200);
        }
        return server;
    }

    URI uri(String path) {
        return URI.create("http://127.0.0.1:" + port + path);
    }

    /** The status of a GET, or -1 when nothing answers. */
    int status(String path) {
        try {
            return http.send(HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(5)).GET().build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    HttpResponse<String> chat(int maxTokens) throws IOException, InterruptedException {
        return http.send(chatRequest(maxTokens, false), HttpResponse.BodyHandlers.ofString());
    }

    HttpRequest chatRequest(int maxTokens, boolean stream) {
        String body = """
                {"model": "tiny-31b", "stream": %s, "max_tokens": %d, "ignore_eos": true,
                 "messages": [{"role": "user", "content": "Tell me a long story."}]}""".formatted(stream, maxTokens);
        return HttpRequest.newBuilder(uri("/v1/chat/completions")).header("Content-Type", "application/json")
                .timeout(Duration.ofSeconds(120)).POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    /** A streamed chat completion as it arrives. */
    static final class Stream {
        final CountDownLatch firstChunk = new CountDownLatch(1);
        volatile int status;
        volatile int chunks;
        volatile String finishReason;
        volatile boolean done;
        volatile String error;
        volatile long endedNanos;
        CompletableFuture<Void> finished;

        boolean completed() {
            return status == 200 && finishReason != null && done && error == null;
        }

        @Override
        public String toString() {
            return "status " + status + ", " + chunks + " chunks, finish_reason " + finishReason + ", [DONE] " + done
                    + (error != null ? ", error " + error : "");
        }
    }

    Stream stream(int maxTokens) {
        Stream s = new Stream();
        s.finished = http.sendAsync(chatRequest(maxTokens, true), HttpResponse.BodyHandlers.ofLines())
                .thenAccept(response -> {
                    s.status = response.statusCode();
                    response.body().forEach(line -> {
                        if (!line.startsWith("data: ")) {
                            return;
                        }
                        String data = line.substring(6);
                        if (data.equals("[DONE]")) {
                            s.done = true;
                            return;
                        }
                        try {
                            JsonNode event = JSON.readTree(data);
                            if (event.has("error")) {
                                s.error = event.get("error").toString();
                                return;
                            }
                            s.chunks++;
                            s.firstChunk.countDown();
                            JsonNode reason = event.path("choices").path(0).path("finish_reason");
                            if (!reason.isMissingNode() && !reason.isNull()) {
                                s.finishReason = reason.asText();
                            }
                        } catch (IOException e) {
                            s.error = "not JSON: " + data;
                        }
                    });
                })
                .exceptionally(e -> {
                    s.error = String.valueOf(e.getCause() != null ? e.getCause() : e);
                    return null;
                })
                .whenComplete((v, e) -> {
                    s.endedNanos = System.nanoTime();
                    s.firstChunk.countDown();
                });
        return s;
    }

    String logText() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
        }
        http.close();
    }
}
