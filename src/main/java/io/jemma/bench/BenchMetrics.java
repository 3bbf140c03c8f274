package io.jemma.bench;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToIntFunction;

/**
 * The figures of sglang bench_serving's {@code calculate_metrics}, over the successful requests of a run.
 * Latency summaries are in milliseconds, throughputs per second of the run's wall duration.
 *
 * @param completed              successful requests
 * @param failed                 requests sent that failed (HTTP error, error event, truncated, aborted)
 * @param totalInput             input tokens of the successful requests
 * @param totalOutput            output tokens of the successful requests
 * @param totalOutputRetokenized their streamed text re-encoded with the tokenizer; -1 without one
 * @param durationS              the run's wall time
 * @param concurrency            the sum of E2E latencies over the duration: the mean requests in flight
 * @param peakOutputThroughput   the most output tokens that arrived in one whole second of the run
 * @param peakConcurrent         the most requests in flight at one moment
 */
public record BenchMetrics(int completed, int failed, long totalInput, long totalOutput,
        long totalOutputRetokenized, double durationS, double requestThroughput, double inputThroughput,
        double outputThroughput, double totalThroughput, double concurrency, double peakOutputThroughput,
        int peakConcurrent, Stats.Summary e2eMs, Stats.Summary ttftMs, Stats.Summary tpotMs, Stats.Summary itlMs) {

    /** How the figures count one successful request's tokens. */
    public record TokenCounts(int input, int output, int retokenized) {
    }

    /**
     * Token counts from the server's usage when it reports it (what it actually processed, chat template
     * included), else from the workload (input) and from the tokenizer, or the number of text chunks without
     * one (output).
     *
     * @param retokenize counts the tokens of generated text; null without a tokenizer
     */
    public static TokenCounts tokens(RequestResult r, ToIntFunction<String> retokenize) {
        int retokenized = retokenize == null ? -1 : retokenize.applyAsInt(r.generatedText());
        int input = r.usagePrompt() >= 0 ? r.usagePrompt() : r.prompt().inputLen();
        int output = r.usageCompletion() >= 0 ? r.usageCompletion() : retokenized >= 0 ? retokenized : r.chunks();
        return new TokenCounts(input, output, retokenized);
    }

    public static BenchMetrics compute(LoadRunner.Run run, ToIntFunction<String> retokenize) {
        List<RequestResult> ok = new ArrayList<>();
        for (RequestResult r : run.results()) {
            if (r.success()) {
                ok.add(r);
            }
        }
        int n = ok.size();
        double[] e2e = new double[n];
        double[] ttft = new double[n];
        List<Double> tpot = new ArrayList<>(n);
        List<Double> itl = new ArrayList<>();
        double e2eSum = 0;
        long input = 0;
        long output = 0;
        long retokenized = retokenize == null ? -1 : 0;
        Map<Long, Double> tokensPerSecond = new HashMap<>();
        for (int i = 0; i < n; i++) {
            RequestResult r = ok.get(i);
            TokenCounts counts = tokens(r, retokenize);
            input += counts.input();
            output += counts.output();
            if (retokenized >= 0) {
                retokenized += counts.retokenized();
            }
            e2e[i] = r.latency();
            e2eSum += r.latency();
            ttft[i] = r.ttft();
            if (counts.output() > 1) {
                tpot.add((r.latency() - r.ttft()) / (counts.output() - 1));
            }
            for (double gap : r.itl()) {
                itl.add(gap);
            }
            // A chunk can carry several tokens (speculative decoding); spread the request's tokens over its chunks.
            double tokensPerChunk = (double) counts.output() / r.chunks();
            double offset = StreamingClient.seconds(r.startNanos() - run.startNanos());
            for (double t : r.chunkTimes()) {
                tokensPerSecond.merge((long) Math.floor(offset + t), tokensPerChunk, Double::sum);
            }
        }
        double duration = run.durationS();
        double perSecond = duration > 0 ? 1 / duration : 0;
        double peakOutput = tokensPerSecond.values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
        return new BenchMetrics(n, run.results().size() - n, input, output, retokenized, duration, n * perSecond,
                input * perSecond, output * perSecond, (input + output) * perSecond,
                e2eSum * perSecond, peakOutput, peakConcurrent(run.results()),
                Stats.summarize(e2e).scaled(1000), Stats.summarize(ttft).scaled(1000),
                Stats.summarize(toArray(tpot)).scaled(1000), Stats.summarize(toArray(itl)).scaled(1000));
    }

    /** The most requests open at once, over all requests sent: a sweep over their send and end times. */
    static int peakConcurrent(List<RequestResult> results) {
        List<long[]> edges = new ArrayList<>(results.size() * 2);
        for (RequestResult r : results) {
            edges.add(new long[] {r.startNanos(), +1});
            edges.add(new long[] {r.startNanos() + (long) (r.latency() * 1e9), -1});
        }
        // At equal times the end goes first: a request that ends as another starts does not overlap it.
        edges.sort((a, b) -> a[0] != b[0] ? Long.compare(a[0], b[0]) : Long.compare(a[1], b[1]));
        int open = 0;
        int peak = 0;
        for (long[] edge : edges) {
            open += (int) edge[1];
            peak = Math.max(peak, open);
        }
        return peak;
    }

    private static double[] toArray(List<Double> values) {
        double[] out = new double[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = values.get(i);
        }
        return out;
    }
}
