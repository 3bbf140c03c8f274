package io.jemma.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The accuracy eval against a running server: every item as one greedy, non-streamed
 * {@code /v1/chat/completions} request, {@code concurrency} in flight, over real HTTP. Figures: exact-match
 * accuracy (all and per task), output tokens per second over the run, and the speculative accept length
 * when the server's {@code /q/metrics} has one.
 */
public final class EvalRunner {

    /**
     * @param baseUrl     the server, without a trailing slash
     * @param model       the {@code model} field; null: the first of {@code GET /v1/models}
     * @param concurrency requests in flight at most
     * @param maxTokens   {@code max_tokens} of each request (the answers are a few dozen tokens at most)
     * @param apiKey      bearer token, or null
     */
    public record Settings(URI baseUrl, String model, int concurrency, int maxTokens, String apiKey) {
        public Settings {
            if (concurrency < 1 || maxTokens < 1) {
                throw new IllegalArgumentException("concurrency and max tokens must be at least 1");
            }
        }
    }

    /** One item's outcome: the reply's text (null when the request failed), its tokens, or the error. */
    public record Outcome(EvalItem item, String reply, int completionTokens, String error) {
        public boolean correct() {
            return error == null && item.isAnsweredBy(reply);
        }
    }

    private EvalRunner() {
    }

    /** Runs the items and returns the report; progress lines go to {@code out}. */
    public static EvalReport run(Settings settings, List<EvalItem> items, PrintStream out)
            throws IOException, InterruptedException {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();
        String model = settings.model() != null ? settings.model() : firstModel(http, settings);
        Optional<String> metricsBefore = metrics(http, settings);
        List<Outcome> outcomes = new ArrayList<>(items.size());
        long start = System.nanoTime();
        try (ExecutorService pool = Executors.newFixedThreadPool(settings.concurrency())) {
            List<Future<Outcome>> futures = new ArrayList<>();
            for (EvalItem item : items) {
                futures.add(pool.submit(() -> ask(http, settings, model, item)));
            }
            int step = Math.max(1, items.size() / 5);
            for (int i = 0; i < futures.size(); i++) {
                try {
                    outcomes.add(futures.get(i).get());
                } catch (ExecutionException e) {
                    outcomes.add(new Outcome(items.get(i), null, 0, String.valueOf(e.getCause())));
                }
                if ((i + 1) % step == 0 && i + 1 < futures.size()) {
                    out.printf("  %d/%d items done%n", i + 1, futures.size());
                }
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        Optional<String> metricsAfter = metrics(http, settings);
        var accept = metricsBefore.isPresent() && metricsAfter.isPresent()
                ? PrometheusText.acceptLength(metricsBefore.get(), metricsAfter.get())
                : java.util.OptionalDouble.empty();
        return new EvalReport(model, settings.concurrency(), outcomes, seconds, accept);
    }

    private static Outcome ask(HttpClient http, Settings settings, String model, EvalItem item) {
        ObjectNode body = BenchJson.MAPPER.createObjectNode();
        body.put("model", model).put("temperature", 0).put("max_tokens", settings.maxTokens());
        body.set("messages", item.messages());
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(settings.baseUrl() + "/v1/chat/completions"))
                .header("Content-Type", "application/json").timeout(Duration.ofMinutes(5))
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
        authorize(request, settings);
        try {
            HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                return new Outcome(item, null, 0, "HTTP " + response.statusCode() + ": " + response.body());
            }
            JsonNode json = BenchJson.MAPPER.readTree(response.body());
            JsonNode content = json.at("/choices/0/message/content");
            if (!content.isTextual()) {
                return new Outcome(item, null, 0, "no choices[0].message.content in " + response.body());
            }
            return new Outcome(item, content.asText(), json.at("/usage/completion_tokens").asInt(0), null);
        } catch (IOException e) {
            return new Outcome(item, null, 0, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Outcome(item, null, 0, "interrupted");
        }
    }

    /** The server's Prometheus text, when it has /q/metrics (empty otherwise: no accept length then). */
    private static Optional<String> metrics(HttpClient http, Settings settings) throws InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(settings.baseUrl() + "/q/metrics"))
                .timeout(Duration.ofSeconds(10)).GET();
        authorize(request, settings);
        try {
            HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
            return response.statusCode() == 200 ? Optional.of(response.body()) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private static String firstModel(HttpClient http, Settings settings) throws IOException, InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(settings.baseUrl() + "/v1/models"))
                .timeout(Duration.ofSeconds(10)).GET();
        authorize(request, settings);
        HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
        JsonNode id = response.statusCode() == 200
                ? BenchJson.MAPPER.readTree(response.body()).path("data").path(0).path("id") : null;
        if (id == null || !id.isTextual()) {
            throw new IOException("GET /v1/models answered " + response.statusCode() + " without a model: "
                    + response.body());
        }
        return id.asText();
    }

    private static void authorize(HttpRequest.Builder request, Settings settings) {
        if (settings.apiKey() != null && !settings.apiKey().isEmpty()) {
            request.header("Authorization", "Bearer " + settings.apiKey());
        }
    }
}
