package io.jemma.bench;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The accuracy eval: the test set of the embedded model's tasks (or any JSONL of chats with exact answers)
 * through a server's OpenAI API; prints exact-match accuracy, output tokens/s and, when the server
 * speculates, the accept length. A client only, like {@link BenchServing}.
 *
 * <pre>
 * ./mvnw -q -Peval compile exec:exec -Dargs="--base-url http://127.0.0.1:8080 --max-concurrency 16"
 * tools/eval/run.sh 1 16          (starts the packaged server itself)
 * </pre>
 */
public final class EvalServing {

    public static final String USAGE = """
            usage: EvalServing [options]
              Exact-match accuracy of greedy chat completions on a JSONL test set (id, task, messages, answer).

              --base-url URL          server (default http://127.0.0.1:8080)
              --dataset FILE          test set (default src/test/resources/eval/test.jsonl)
              --model ID              model field (default: the first of GET /v1/models)
              --api-key KEY           bearer token (default: $OPENAI_API_KEY)
              --max-concurrency N     requests in flight (default 8)
              --max-tokens N          max_tokens of each request (default 64)
              --num-items N           the first N items of the (strided) set (default: all)
              --stride K              every K-th item (default 1)
              --min-accuracy A        exit with status 1 when the accuracy is below A (default 0)
              --output-file FILE      append the figures as one JSON line
              --show-mistakes N       print up to N wrong answers (default 10)
              --help                  this text
            """;

    private EvalServing() {
    }

    public static void main(String[] argv) {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        if (BenchArgs.wantsHelp(argv) && argv.length > 0) {
            out.print(USAGE);
            return;
        }
        Map<String, String> o;
        EvalRunner.Settings settings;
        List<EvalItem> items;
        try {
            o = options(argv);
            String apiKey = o.containsKey("api-key") ? o.get("api-key") : System.getenv("OPENAI_API_KEY");
            String base = o.getOrDefault("base-url", "http://127.0.0.1:8080");
            settings = new EvalRunner.Settings(URI.create(base.endsWith("/") ? base.substring(0, base.length() - 1) : base),
                    o.get("model"), integer(o, "max-concurrency", 8), integer(o, "max-tokens", 64), apiKey);
            items = EvalItem.slice(EvalItem.load(Path.of(o.getOrDefault("dataset", EvalItem.TEST_SET.toString()))),
                    integer(o, "stride", 1), integer(o, "num-items", 0));
        } catch (IllegalArgumentException | java.io.UncheckedIOException e) {
            System.err.println("error: " + e.getMessage());
            System.err.print(USAGE);
            System.exit(2);
            return;
        }
        try {
            out.printf("eval: %d items, concurrency %d, against %s%n", items.size(), settings.concurrency(),
                    settings.baseUrl());
            EvalReport report = EvalRunner.run(settings, items, out);
            out.print(report.table());
            int show = integer(o, "show-mistakes", 10);
            if (show > 0 && report.correct() < report.items()) {
                out.println("Mistakes (first " + show + "):");
                out.print(report.mistakes(show));
            }
            if (o.containsKey("output-file")) {
                Files.writeString(Path.of(o.get("output-file")), report.json() + "\n", StandardOpenOption.CREATE,
                        StandardOpenOption.APPEND);
                out.println("Results appended to " + o.get("output-file"));
            }
            double min = Double.parseDouble(o.getOrDefault("min-accuracy", "0"));
            System.exit(report.failed() < report.items() && report.accuracy() >= min ? 0 : 1);
        } catch (IOException | InterruptedException e) {
            System.err.println("error: " + e);
            System.exit(1);
        }
    }

    private static final java.util.Set<String> VALUED = java.util.Set.of("base-url", "dataset", "model", "api-key",
            "max-concurrency", "max-tokens", "num-items", "stride", "min-accuracy", "output-file", "show-mistakes");

    static Map<String, String> options(String[] argv) {
        Map<String, String> o = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            if (!a.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument: " + a);
            }
            String key = a.substring(2);
            String value = null;
            int eq = key.indexOf('=');
            if (eq >= 0) {
                value = key.substring(eq + 1);
                key = key.substring(0, eq);
            }
            if (!VALUED.contains(key)) {
                throw new IllegalArgumentException("unknown option --" + key);
            }
            if (value == null) {
                if (i + 1 >= argv.length) {
                    throw new IllegalArgumentException("--" + key + " needs a value");
                }
                value = argv[++i];
            }
            o.put(key, value);
        }
        return o;
    }

    private static int integer(Map<String, String> o, String key, int fallback) {
        try {
            return o.containsKey(key) ? Integer.parseInt(o.get(key)) : fallback;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + key + " must be an integer, not " + o.get(key));
        }
    }
}
