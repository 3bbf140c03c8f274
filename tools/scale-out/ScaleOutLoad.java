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
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * The scale-out experiment's load (tools/scale-out/run.sh runs it with `java ScaleOutLoad.java`): a fixed
 * number of clients, each streaming chat completions one after another through the load balancer for a
 * while; at a given second it signals one backend (SIGKILL, or SIGTERM for the drain), then reports what
 * happened to the streams that were running at that moment and to the requests sent after it.
 *
 *   java ScaleOutLoad.java URL CLIENTS MAX_TOKENS SECONDS SIGNAL_AT PID KILL|TERM
 *
 * A stream counts as completed when it ends with a finish_reason and [DONE]; as cut when it started
 * (200 and at least one chunk) but ended without them; as failed when it never started (an HTTP error
 * status, or no connection). The backend each one went to is nginx's X-Upstream header.
 */
public class ScaleOutLoad {
    record Result(long startNanos, long endNanos, int status, String upstream, int chunks, boolean completed,
                  String problem) {
        boolean started() {
            return status == 200 && chunks > 0;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 7) {
            System.err.println("usage: java ScaleOutLoad.java URL CLIENTS MAX_TOKENS SECONDS SIGNAL_AT PID KILL|TERM");
            System.exit(2);
        }
        String url = args[0];
        int clients = Integer.parseInt(args[1]);
        int maxTokens = Integer.parseInt(args[2]);
        double seconds = Double.parseDouble(args[3]);
        double signalAt = Double.parseDouble(args[4]);
        long pid = Long.parseLong(args[5]);
        boolean kill = args[6].equalsIgnoreCase("KILL");

        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build();
        List<Result> results = Collections.synchronizedList(new ArrayList<>());
        long t0 = System.nanoTime();
        long end = t0 + (long) (seconds * 1e9);
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int c = 0; c < clients; c++) {
                pool.submit(() -> {
                    while (System.nanoTime() < end) {
                        results.add(oneStream(http, url, maxTokens));
                    }
                });
            }
            long signalNanos = t0 + (long) (signalAt * 1e9);
            Thread.sleep(Math.max(0, (signalNanos - System.nanoTime()) / 1_000_000));
            long signalled = System.nanoTime();
            ProcessHandle backend = ProcessHandle.of(pid).orElseThrow(() -> new IllegalStateException("no process " + pid));
            boolean sent = kill ? backend.destroyForcibly() : backend.destroy(); // SIGKILL : SIGTERM
            System.err.printf(Locale.ROOT, "load: %s sent to backend pid %d at %.1f s (%s)%n", kill ? "SIGKILL" : "SIGTERM",
                    pid, (signalled - t0) / 1e9, sent ? "delivered" : "not delivered");
            pool.shutdown();
            pool.awaitTermination((long) seconds + 300, TimeUnit.SECONDS);
            report(results, signalled, t0, kill ? "SIGKILL" : "SIGTERM");
        }
    }

    static Result oneStream(HttpClient http, String url, int maxTokens) {
        long start = System.nanoTime();
        String body = """
                {"model": "jemma-embedded", "stream": true, "max_tokens": %d, "ignore_eos": true,
                 "messages": [{"role": "user", "content": "Tell me a long story."}]}""".formatted(maxTokens);
        HttpRequest request = HttpRequest.newBuilder(URI.create(url + "/v1/chat/completions"))
                .header("Content-Type", "application/json").timeout(Duration.ofSeconds(120))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        int status = -1;
        String upstream = "";
        int chunks = 0;
        boolean finish = false;
        boolean done = false;
        String problem = null;
        try {
            HttpResponse<java.io.InputStream> response = http.send(request, HttpResponse.BodyHandlers.ofInputStream());
            status = response.statusCode();
            upstream = response.headers().firstValue("X-Upstream").orElse("");
            try (BufferedReader in = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    if (!line.startsWith("data: ")) {
                        continue;
                    }
                    if (line.equals("data: [DONE]")) {
                        done = true;
                    } else if (line.contains("\"error\"")) {
                        problem = "error event: " + line.substring(6);
                    } else {
                        chunks++;
                        if (line.contains("\"finish_reason\":\"")) {
                            finish = true;
                        }
                    }
                }
            }
            if (status != 200 && problem == null) {
                problem = "HTTP " + status;
            }
        } catch (IOException e) {
            problem = e.getClass().getSimpleName() + ": " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            problem = "interrupted";
        }
        boolean completed = status == 200 && finish && done && problem == null;
        if (!completed && problem == null) {
            problem = "ended without finish_reason/[DONE] after " + chunks + " chunks";
        }
        return new Result(start, System.nanoTime(), status, upstream, chunks, completed, problem);
    }

    static void report(List<Result> all, long signalled, long t0, String signal) {
        List<Result> results = List.copyOf(all);
        List<Result> inFlight = results.stream().filter(r -> r.startNanos < signalled && r.endNanos > signalled).toList();
        List<Result> before = results.stream().filter(r -> r.endNanos <= signalled).toList();
        List<Result> after = results.stream().filter(r -> r.startNanos >= signalled).toList();
        long inFlightCompleted = inFlight.stream().filter(Result::completed).count();
        long cut = inFlight.stream().filter(r -> r.started() && !r.completed()).count();
        long inFlightFailed = inFlight.stream().filter(r -> !r.started() && !r.completed()).count();
        long afterOk = after.stream().filter(Result::completed).count();
        long beforeOk = before.stream().filter(Result::completed).count();
        System.out.printf(Locale.ROOT, "signal                      %s at %.1f s%n", signal, (signalled - t0) / 1e9);
        System.out.printf(Locale.ROOT, "before the signal           %d requests, %d completed%n", before.size(), beforeOk);
        System.out.printf(Locale.ROOT, "in flight at the signal     %d streams: %d completed, %d cut, %d failed before starting%n",
                inFlight.size(), inFlightCompleted, cut, inFlightFailed);
        System.out.printf(Locale.ROOT, "after the signal            %d requests, %d completed, %d not%n", after.size(),
                afterOk, after.size() - afterOk);
        System.out.println("in flight, by backend       " + byUpstream(inFlight));
        System.out.println("after, by backend           " + byUpstream(after));
        results.stream().filter(r -> !r.completed()).map(r -> String.format(Locale.ROOT,
                        "  not completed: %.1f-%.1f s, upstream %s, status %d, %d chunks: %s", (r.startNanos - t0) / 1e9,
                        (r.endNanos - t0) / 1e9, r.upstream.isEmpty() ? "?" : r.upstream, r.status, r.chunks, r.problem))
                .limit(20).forEach(System.out::println);
        System.out.printf(Locale.ROOT, "RESULT signal=%s in_flight=%d cut=%d in_flight_completed=%d after=%d after_completed=%d%n",
                signal, inFlight.size(), cut, inFlightCompleted, after.size(), afterOk);
    }

    static String byUpstream(List<Result> results) {
        var counts = new java.util.TreeMap<String, int[]>();
        for (Result r : results) {
            int[] c = counts.computeIfAbsent(r.upstream.isEmpty() ? "(none)" : r.upstream, k -> new int[2]);
            c[0]++;
            if (r.completed()) {
                c[1]++;
            }
        }
        StringBuilder b = new StringBuilder();
        counts.forEach((k, v) -> b.append(k).append(": ").append(v[1]).append("/").append(v[0]).append(" completed  "));
        return b.toString().trim();
    }
}
