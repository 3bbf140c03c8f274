package io.jemma.bench;

import java.net.URI;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * The command line of {@link BenchServing}: sglang bench_serving's option names and defaults where it has
 * them, {@code --backend-api} and {@code --duration-limit} of our own.
 *
 * @param baseUrl          the server, without a trailing slash; routes are appended to it
 * @param numPrompts       requests to send; for generated-shared-prefix, -1 means all groups x prompts
 * @param maxConcurrency   the most requests in flight; 0 for no limit
 * @param durationLimitS   the wall-time bound on warmup plus run, after which it stops and reports
 * @param extraRequestBody JSON object merged into every request body; null for none
 * @param outputFile       where to append the results as one JSON line; null for none
 */
public record BenchArgs(URI baseUrl, Api api, String model, Dataset dataset, int numPrompts, int randomInputLen,
        int randomOutputLen, double randomRangeRatio, Workloads.SharedPrefixShape gsp, Path tokenizer, long seed,
        double requestRate, int maxConcurrency, int warmupRequests, double durationLimitS, double temperature,
        boolean ignoreEos, String extraRequestBody, Path outputFile, boolean outputDetails, String apiKey) {

    public enum Dataset {
        RANDOM("random"), GENERATED_SHARED_PREFIX("generated-shared-prefix");

        final String name;

        Dataset(String name) {
            this.name = name;
        }

        static Dataset parse(String value) {
            for (Dataset d : values()) {
                if (d.name.equals(value)) {
                    return d;
                }
            }
            throw new IllegalArgumentException("--dataset must be random or generated-shared-prefix, not " + value);
        }
    }

    public static final String USAGE = """
            usage: BenchServing [options]
              Load generator for an OpenAI-compatible server; prints sglang bench_serving's result table.

              --base-url URL              server (default http://127.0.0.1:8080)
              --backend-api API           chat (/v1/chat/completions, default) or completions (/v1/completions)
              --model ID                  model field of requests (default: the first of GET /v1/models)
              --api-key KEY               bearer token (default: $OPENAI_API_KEY)
              --dataset NAME              random (default) or generated-shared-prefix
              --num-prompts N             requests to send (default 1000; gsp: all groups x prompts)
              --random-input-len N        random: input tokens (default 1024)
              --random-output-len N       random: output tokens (default 1024)
              --random-range-ratio R      random: lengths drawn from [max(len*R, 1), len] (default 0.0)
              --gsp-num-groups N          generated-shared-prefix: groups (default 64)
              --gsp-prompts-per-group N   prompts per group (default 16)
              --gsp-system-prompt-len N   shared system prompt tokens (default 2048)
              --gsp-question-len N        question tokens (default 128)
              --gsp-output-len N          output tokens (default 256)
              --tokenizer DIR             Hugging Face model directory with tokenizer.json; without it prompts
                                          are random words and lengths approximate
              --seed N                    workload and arrival seed (default 1)
              --request-rate R            requests per second, Poisson arrivals; inf = all at once (default inf)
              --max-concurrency N         most requests in flight (default: no limit)
              --warmup-requests N         requests sent first and left out of the figures (default 1)
              --duration-limit S          stop after S seconds, counting unfinished requests failed (default 3600)
              --temperature T             sampling temperature (default 0)
              --disable-ignore-eos        do not send ignore_eos: true
              --extra-request-body JSON   fields merged into every request body
              --output-file FILE          append the results as one JSON line
              --output-details            include per-request lengths, TTFTs, ITLs, texts and errors in it
              --help                      this text
            """;

    private static final Set<String> FLAGS = Set.of("help", "disable-ignore-eos", "output-details");
    private static final Set<String> VALUED = Set.of("base-url", "backend-api", "model", "api-key", "dataset",
            "num-prompts", "random-input-len", "random-output-len", "random-range-ratio", "gsp-num-groups",
            "gsp-prompts-per-group", "gsp-system-prompt-len", "gsp-question-len", "gsp-output-len", "tokenizer",
            "seed", "request-rate", "max-concurrency", "warmup-requests", "duration-limit", "temperature",
            "extra-request-body", "output-file");

    /** Whether the command line asks for the usage text. */
    public static boolean wantsHelp(String[] argv) {
        for (String a : argv) {
            if (a.equals("--help") || a.equals("-h")) {
                return true;
            }
        }
        return argv.length == 0;
    }

    /**
     * Parses {@code --name value}, {@code --name=value} and the flags.
     *
     * @throws IllegalArgumentException naming the option at fault
     */
    public static BenchArgs parse(String[] argv) {
        Map<String, String> o = options(argv);
        Dataset dataset = Dataset.parse(o.getOrDefault("dataset", "random"));
        String rate = o.getOrDefault("request-rate", "inf");
        String apiKey = o.containsKey("api-key") ? o.get("api-key") : System.getenv("OPENAI_API_KEY");
        var args = new BenchArgs(
                URI.create(stripTrailingSlash(o.getOrDefault("base-url", "http://127.0.0.1:8080"))),
                Api.parse(o.getOrDefault("backend-api", "chat")),
                o.get("model"),
                dataset,
                integer(o, "num-prompts", dataset == Dataset.RANDOM ? 1000 : -1),
                integer(o, "random-input-len", 1024),
                integer(o, "random-output-len", 1024),
                decimal(o, "random-range-ratio", 0.0),
                new Workloads.SharedPrefixShape(integer(o, "gsp-num-groups", 64), integer(o, "gsp-prompts-per-group", 16),
                        integer(o, "gsp-system-prompt-len", 2048), integer(o, "gsp-question-len", 128),
                        integer(o, "gsp-output-len", 256)),
                o.containsKey("tokenizer") ? Path.of(o.get("tokenizer")) : null,
                Long.parseLong(o.getOrDefault("seed", "1")),
                rate.equalsIgnoreCase("inf") ? Double.POSITIVE_INFINITY : decimal(o, "request-rate", 0),
                integer(o, "max-concurrency", 0),
                integer(o, "warmup-requests", 1),
                decimal(o, "duration-limit", 3600),
                decimal(o, "temperature", 0),
                !o.containsKey("disable-ignore-eos"),
                o.get("extra-request-body"),
                o.containsKey("output-file") ? Path.of(o.get("output-file")) : null,
                o.containsKey("output-details"),
                apiKey);
        args.check();
        return args;
    }

    /** The options as printed at the start of a run, with the API key masked. */
    @Override
    public String toString() {
        return "BenchArgs[baseUrl=" + baseUrl + ", api=" + api + ", model=" + model + ", dataset=" + dataset.name
                + ", numPrompts=" + numPrompts + ", randomInputLen=" + randomInputLen + ", randomOutputLen="
                + randomOutputLen + ", randomRangeRatio=" + randomRangeRatio + ", gsp=" + gsp + ", tokenizer="
                + tokenizer + ", seed=" + seed + ", requestRate=" + ResultTable.pythonFloat(requestRate) + ", maxConcurrency=" + maxConcurrency
                + ", warmupRequests=" + warmupRequests + ", durationLimitS=" + durationLimitS + ", temperature="
                + temperature + ", ignoreEos=" + ignoreEos + ", extraRequestBody=" + extraRequestBody
                + ", outputFile=" + outputFile + ", outputDetails=" + outputDetails + ", apiKey="
                + (apiKey == null || apiKey.isEmpty() ? "none" : "(set)") + "]";
    }

    private void check() {
        if (dataset == Dataset.RANDOM && numPrompts < 1) {
            throw new IllegalArgumentException("--num-prompts must be at least 1");
        }
        if (!(requestRate > 0)) {
            throw new IllegalArgumentException("--request-rate must be positive or inf");
        }
        if (maxConcurrency < 0 || warmupRequests < 0) {
            throw new IllegalArgumentException("--max-concurrency and --warmup-requests must not be negative");
        }
        if (!(durationLimitS > 0)) {
            throw new IllegalArgumentException("--duration-limit must be positive");
        }
        if (!(temperature >= 0)) {
            throw new IllegalArgumentException("--temperature must not be negative");
        }
        String scheme = baseUrl.getScheme();
        if (!"http".equals(scheme) && !"https".equals(scheme)) {
            throw new IllegalArgumentException("--base-url must be an http:// or https:// URL, not " + baseUrl);
        }
    }

    private static Map<String, String> options(String[] argv) {
        Map<String, String> o = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String arg = argv[i];
            if (!arg.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument " + arg);
            }
            String name = arg.substring(2);
            String value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            if (FLAGS.contains(name)) {
                o.put(name, "true");
            } else if (VALUED.contains(name)) {
                if (value == null) {
                    if (i + 1 >= argv.length) {
                        throw new IllegalArgumentException("--" + name + " needs a value");
                    }
                    value = argv[++i];
                }
                o.put(name, value);
            } else {
                throw new IllegalArgumentException("unknown option --" + name);
            }
        }
        return o;
    }

    private static int integer(Map<String, String> o, String name, int absent) {
        String v = o.get(name);
        try {
            return v == null ? absent : Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be an integer, not " + v);
        }
    }

    private static double decimal(Map<String, String> o, String name, double absent) {
        String v = o.get(name);
        try {
            return v == null ? absent : Double.parseDouble(v.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be a number, not " + v);
        }
    }

    private static String stripTrailingSlash(String url) {
        return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    }
}
