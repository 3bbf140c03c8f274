import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * The soak's load (tools/soak/run.sh runs it with `java SoakLoad.java`): CLIENTS clients, each sending
 * streaming chat or text completions one after another for SECONDS seconds, every request with random
 * sampling parameters (temperature, top_p, top_k, min_p, penalties, seed, max_tokens, n, stop, logprobs).
 * Prints one summary line per figure; exits 1 when any request got a 5xx or a stream did not end with a
 * finish_reason and [DONE].
 *
 *   java SoakLoad.java BASE_URL MODEL CLIENTS SECONDS
 */
public class SoakLoad {
    record Result(int status, double ttftMs, boolean completed, String problem) {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: java SoakLoad.java BASE_URL MODEL CLIENTS SECONDS");
            System.exit(2);
        }
        String base = args[0];
        String model = args[1];
        int clients = Integer.parseInt(args[2]);
        long endNanos = System.nanoTime() + (long) (Double.parseDouble(args[3]) * 1e9);
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();
        List<Result> results = Collections.synchronizedList(new ArrayList<>());
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        for (int c = 0; c < clients; c++) {
            pool.submit(() -> {
                while (System.nanoTime() < endNanos) {
                    results.add(one(http, base, model));
                }
                return null;
            });
        }
        pool.shutdown();
        if (!pool.awaitTermination((long) (Double.parseDouble(args[3]) + 300), TimeUnit.SECONDS)) {
            System.err.println("soak: clients did not finish in time");
            pool.shutdownNow();
        }
        Map<Integer, Integer> byStatus = new TreeMap<>();
        List<Double> ttfts = new ArrayList<>();
        int completed = 0;
        int broken = 0;
        Map<String, Integer> problems = new TreeMap<>();
        synchronized (results) {
            for (Result r : results) {
                byStatus.merge(r.status, 1, Integer::sum);
                if (r.completed) {
                    completed++;
                    ttfts.add(r.ttftMs);
                } else if (r.status == 200) {
                    broken++;
                }
                if (r.problem != null) {
                    problems.merge(r.problem, 1, Integer::sum);
                }
            }
        }
        Collections.sort(ttfts);
        int fiveXX = byStatus.entrySet().stream().filter(e -> e.getKey() >= 500 || e.getKey() < 0)
                .mapToInt(Map.Entry::getValue).sum();
        System.out.printf(Locale.ROOT, "requests sent:       %d%n", results.size());
        System.out.printf(Locale.ROOT, "requests served:     %d (finish_reason and [DONE])%n", completed);
        System.out.printf(Locale.ROOT, "by HTTP status:      %s (-1: no connection)%n", byStatus);
        System.out.printf(Locale.ROOT, "5xx or no response:  %d%n", fiveXX);
        System.out.printf(Locale.ROOT, "streams cut short:   %d%n", broken);
        System.out.printf(Locale.ROOT, "TTFT p50 / p99 ms:   %.1f / %.1f%n", pct(ttfts, 50), pct(ttfts, 99));
        problems.forEach((p, n) -> System.out.printf(Locale.ROOT, "problem x%d: %s%n", n, p));
        System.exit(fiveXX == 0 && broken == 0 && completed > 0 ? 0 : 1);
    }

    static double pct(List<Double> sorted, int p) {
        if (sorted.isEmpty()) {
            return Double.NaN;
        }
        int i = (int) Math.ceil(p / 100.0 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
    }

    static String body(String model) {
        ThreadLocalRandom r = ThreadLocalRandom.current();
        boolean chat = r.nextBoolean();
        StringBuilder b = new StringBuilder("{\"model\":\"").append(model).append("\",\"stream\":true");
        if (chat) {
            b.append(",\"messages\":[{\"role\":\"user\",\"content\":\"Soak request ").append(r.nextInt(1_000_000))
                    .append(" ".repeat(r.nextInt(3))).append("tell me something\"}]");
        } else {
            b.append(",\"prompt\":\"Soak prompt ").append(r.nextInt(1_000_000)).append(" once upon a time\"");
        }
        b.append(",\"max_tokens\":").append(1 + r.nextInt(200));
        if (r.nextBoolean()) b.append(",\"temperature\":").append(r.nextInt(4) == 0 ? 0 : r.nextDouble(0.05, 2.0));
        if (r.nextBoolean()) b.append(",\"top_p\":").append(r.nextDouble(0.05, 1.0));
        if (r.nextBoolean()) b.append(",\"top_k\":").append(r.nextInt(4) == 0 ? -1 : 1 + r.nextInt(100));
        if (r.nextInt(3) == 0) b.append(",\"min_p\":").append(r.nextDouble(0, 0.5));
        if (r.nextInt(3) == 0) b.append(",\"frequency_penalty\":").append(r.nextDouble(-2, 2));
        if (r.nextInt(3) == 0) b.append(",\"presence_penalty\":").append(r.nextDouble(-2, 2));
        if (r.nextInt(3) == 0) b.append(",\"repetition_penalty\":").append(r.nextDouble(0.5, 2));
        if (r.nextInt(3) == 0) b.append(",\"seed\":").append(r.nextLong(1_000_000));
        if (r.nextInt(4) == 0) b.append(",\"n\":").append(1 + r.nextInt(3));
        if (r.nextInt(4) == 0) b.append(",\"stop\":[\"a\",\"\\n\"]");
        if (r.nextInt(4) == 0) b.append(",\"stream_options\":{\"include_usage\":true}");
        if (r.nextInt(5) == 0) b.append(chat ? ",\"logprobs\":true,\"top_logprobs\":3" : ",\"logprobs\":2");
        return b.append('}').toString();
    }

    static Result one(HttpClient http, String base, String model) {
        String body = body(model);
        String path = body.contains("\"messages\"") ? "/v1/chat/completions" : "/v1/completions";
        HttpRequest request = HttpRequest.newBuilder(URI.create(base + path)).header("Content-Type", "application/json")
                .timeout(Duration.ofMinutes(5)).POST(HttpRequest.BodyPublishers.ofString(body)).build();
        long start = System.nanoTime();
        try {
            HttpResponse<java.io.InputStream> resp = http.send(request, HttpResponse.BodyHandlers.ofInputStream());
            try (BufferedReader in = new BufferedReader(new InputStreamReader(resp.body(), StandardCharsets.UTF_8))) {
                if (resp.statusCode() != 200) {
                    String text = in.lines().reduce("", String::concat);
                    return new Result(resp.statusCode(), 0, false,
                            resp.statusCode() + " " + text.substring(0, Math.min(160, text.length())));
                }
                double ttft = -1;
                boolean finished = false;
                boolean done = false;
                String error = null;
                String line;
                while ((line = in.readLine()) != null) {
                    if (!line.startsWith("data: ")) {
                        continue;
                    }
                    if (ttft < 0) {
                        ttft = (System.nanoTime() - start) / 1e6;
                    }
                    String data = line.substring(6);
                    if (data.equals("[DONE]")) {
                        done = true;
                    } else if (data.startsWith("{\"error\"")) {
                        error = data.substring(0, Math.min(160, data.length()));
                    } else if (data.contains("\"finish_reason\":\"")) {
                        finished = true;
                    }
                }
                boolean ok = finished && done && error == null;
                return new Result(200, ttft, ok, ok ? null : "stream: finish=" + finished + " done=" + done
                        + (error == null ? "" : " " + error));
            }
        } catch (IOException e) {
            return new Result(-1, 0, false, "I/O: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(-1, 0, false, "interrupted");
        }
    }
}
