package io.jemma.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jemma.tokenizer.Tokenizer;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.ToIntFunction;

/**
 * The serving benchmark: sglang bench_serving's workloads and figures against any OpenAI-compatible URL.
 * A client only: it uses the project's tokenizer to make and count prompts, nothing of its engine.
 *
 * <pre>
 * ./mvnw -q -Pbench-serving compile exec:exec -Dargs="--base-url http://127.0.0.1:8080 --dataset random \
 *     --num-prompts 64 --max-concurrency 16 --random-input-len 128 --random-output-len 64 \
 *     --tokenizer src/test/resources/golden/tiny-31b"
 * </pre>
 */
public final class BenchServing {

    /** Arrivals draw from their own stream, so changing the rate does not change the prompts. */
    private static final long ARRIVAL_SEED_SALT = 0x5DEECE66DL;
    /** sglang keeps warmup requests short. */
    private static final int WARMUP_OUTPUT_LEN = 32;

    /** Something that stops the benchmark before it has figures to print. */
    public static final class BenchException extends RuntimeException {
        public BenchException(String message) {
            super(message);
        }
    }

    /** A finished benchmark: the model it asked for, the raw run, its figures and the printed table. */
    public record Report(String model, LoadRunner.Run run, BenchMetrics metrics, String table) {
    }

    private BenchServing() {
    }

    public static void main(String[] argv) {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        if (BenchArgs.wantsHelp(argv)) {
            out.print(BenchArgs.USAGE);
            return;
        }
        BenchArgs args;
        try {
            args = BenchArgs.parse(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            System.err.print(BenchArgs.USAGE);
            System.exit(2);
            return;
        }
        try {
            Report report = run(args, out);
            // Exit explicitly: the HTTP client's threads would keep a slow server's connections open a while.
            System.exit(report.metrics().completed() > 0 ? 0 : 1);
        } catch (BenchException | io.jemma.tokenizer.TokenizerException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        } catch (IOException | InterruptedException e) {
            System.err.println("error: " + e);
            System.exit(1);
        }
    }

    /** Runs the whole benchmark: workload, warmup, run, figures, table on {@code out}, JSON file. */
    public static Report run(BenchArgs args, PrintStream out) throws IOException, InterruptedException {
        out.println("benchmark_args=" + args);
        long deadline = System.nanoTime() + (long) (args.durationLimitS() * 1e9);
        RandomText text = textSource(args, out);
        List<Prompt> prompts = workload(args, text);
        out.printf("#Input tokens: %d%n", prompts.stream().mapToLong(Prompt::inputLen).sum());
        out.printf("#Output tokens: %d%n", prompts.stream().mapToLong(Prompt::outputLen).sum());

        HttpClient http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10))
                .build();
        String model = args.model() != null ? args.model() : firstModel(http, args, out);
        ObjectNode extra = extraBody(args.extraRequestBody());
        var client = new StreamingClient(http, new StreamingClient.Target(args.baseUrl(), args.api(), model,
                args.temperature(), args.ignoreEos(), extra, args.apiKey()));

        warmup(args, prompts.getFirst(), client, deadline, out);

        double[] arrivals = Arrivals.schedule(prompts.size(), args.requestRate(),
                new Random(args.seed() ^ ARRIVAL_SEED_SALT));
        LoadRunner.Run run = LoadRunner.run(prompts, arrivals, args.maxConcurrency(), deadline,
                withProgress(client, prompts.size(), out));

        ToIntFunction<String> retokenize = text instanceof RandomText.TokenIds ids
                ? s -> ids.tokenizer().encode(s).length
                : null;
        BenchMetrics metrics = BenchMetrics.compute(run, retokenize);
        String table = ResultTable.format(
                new ResultTable.Header(args.api().label(), args.requestRate(), args.maxConcurrency()), metrics);
        out.print(table);
        if (run.hitDeadline()) {
            out.printf("Duration limit of %.0f s reached: unfinished requests were aborted and counted failed;"
                    + " %d requests were not sent.%n", args.durationLimitS(), run.notSent());
        }
        firstError(run.results()).ifPresent(e -> out.println("First error: " + e));
        if (args.outputFile() != null) {
            ObjectNode json = ResultJson.of(args, model, metrics, run.results());
            if (args.outputDetails()) {
                ResultJson.addDetails(json, run.results(), retokenize);
            }
            ResultJson.append(args.outputFile(), json);
            out.println("Results appended to " + args.outputFile());
        }
        return new Report(model, run, metrics, table);
    }

    /** The client, printing a line at each tenth of the requests done: long runs otherwise look hung. */
    private static LoadRunner.Sender withProgress(StreamingClient client, int total, PrintStream out) {
        var done = new java.util.concurrent.atomic.AtomicInteger();
        int step = Math.max(1, total / 10);
        return (prompt, deadline) -> {
            RequestResult result = client.send(prompt, deadline);
            int n = done.incrementAndGet();
            if (n % step == 0 || n == total) {
                out.printf("  %d/%d requests done%n", n, total);
            }
            return result;
        };
    }

    static RandomText textSource(BenchArgs args, PrintStream out) {
        if (args.tokenizer() == null) {
            out.println("No --tokenizer: prompts are random English-like words and their lengths are word counts,"
                    + " an approximation of tokens; the server's usage counts, when it sends them, are exact.");
            return RandomText.words();
        }
        return RandomText.of(Tokenizer.load(args.tokenizer()));
    }

    static List<Prompt> workload(BenchArgs args, RandomText text) {
        Random rng = new Random(args.seed());
        List<Prompt> prompts = switch (args.dataset()) {
            case RANDOM -> Workloads.random(text, args.numPrompts(), args.randomInputLen(), args.randomOutputLen(),
                    args.randomRangeRatio(), rng);
            case GENERATED_SHARED_PREFIX -> Workloads.sharedPrefix(text, args.gsp(), rng);
        };
        // generated-shared-prefix makes groups x prompts; a smaller --num-prompts takes the first of the shuffle.
        if (args.numPrompts() > 0 && args.numPrompts() < prompts.size()) {
            prompts = prompts.subList(0, args.numPrompts());
        }
        return Collections.unmodifiableList(prompts);
    }

    /**
     * sglang's warmup: the first prompt, asking for at most 32 tokens, sent {@code --warmup-requests} times at
     * once; the run goes ahead if any of them succeeds.
     */
    private static void warmup(BenchArgs args, Prompt first, StreamingClient client, long deadline, PrintStream out)
            throws InterruptedException {
        int n = args.warmupRequests();
        if (n == 0) {
            return;
        }
        out.printf("Starting warmup with %d sequences...%n", n);
        List<Prompt> warm = Collections.nCopies(n, first.withOutputLen(Math.min(first.outputLen(), WARMUP_OUTPUT_LEN)));
        LoadRunner.Run run = LoadRunner.run(warm, new double[n], 0, deadline, client::send);
        if (run.results().stream().noneMatch(RequestResult::success)) {
            throw new BenchException("warmup failed: check --base-url, --backend-api and --model. Error: "
                    + firstError(run.results()).orElse("none sent before the duration limit"));
        }
        out.printf("Warmup completed with %d sequences. Starting main benchmark run...%n", n);
    }

    /** The first model of {@code GET /v1/models}, as sglang picks one when {@code --model} is not given. */
    private static String firstModel(HttpClient http, BenchArgs args, PrintStream out) throws InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(args.baseUrl() + "/v1/models"))
                .timeout(Duration.ofSeconds(10)).GET();
        if (args.apiKey() != null && !args.apiKey().isEmpty()) {
            request.header("Authorization", "Bearer " + args.apiKey());
        }
        try {
            HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() == 200) {
                JsonNode id = BenchJson.MAPPER.readTree(response.body()).path("data").path(0).path("id");
                if (id.isTextual()) {
                    out.println("Model: " + id.asText() + " (the first of GET /v1/models)");
                    return id.asText();
                }
            }
            out.println("GET /v1/models answered " + response.statusCode() + " without a model; using \"default\"");
        } catch (IOException e) {
            out.println("GET /v1/models failed (" + e + "); using \"default\"");
        }
        return "default";
    }

    private static ObjectNode extraBody(String json) {
        if (json == null) {
            return null;
        }
        try {
            JsonNode node = BenchJson.MAPPER.readTree(json);
            if (node instanceof ObjectNode object) {
                return object;
            }
        } catch (IOException e) {
            // reported below
        }
        throw new BenchException("--extra-request-body must be a JSON object: " + json);
    }

    private static java.util.Optional<String> firstError(List<RequestResult> results) {
        return results.stream().filter(r -> !r.success()).map(RequestResult::error).findFirst();
    }
}
