package io.jemma.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.TreeMap;

/**
 * The figures of one eval run.
 *
 * @param seconds      wall time from the first request sent to the last answer
 * @param acceptLength the server's mean speculative accept length over the run, when it reports one
 */
public record EvalReport(String model, int concurrency, List<EvalRunner.Outcome> outcomes, double seconds,
        OptionalDouble acceptLength) {

    public EvalReport {
        outcomes = List.copyOf(outcomes);
    }

    public int items() {
        return outcomes.size();
    }

    public long correct() {
        return outcomes.stream().filter(EvalRunner.Outcome::correct).count();
    }

    public long failed() {
        return outcomes.stream().filter(o -> o.error() != null).count();
    }

    /** Exact-match accuracy over all items (failed requests count as wrong). */
    public double accuracy() {
        return outcomes.isEmpty() ? 0 : (double) correct() / outcomes.size();
    }

    /** Accuracy per task, by task name. */
    public Map<String, Double> accuracyPerTask() {
        Map<String, int[]> counts = new TreeMap<>();
        for (var o : outcomes) {
            int[] c = counts.computeIfAbsent(o.item().task(), t -> new int[2]);
            c[0] += o.correct() ? 1 : 0;
            c[1]++;
        }
        Map<String, Double> out = new TreeMap<>();
        counts.forEach((task, c) -> out.put(task, (double) c[0] / c[1]));
        return out;
    }

    public long completionTokens() {
        return outcomes.stream().mapToLong(EvalRunner.Outcome::completionTokens).sum();
    }

    /** Output tokens per second over the run (all requests together). */
    public double tokensPerSecond() {
        return seconds > 0 ? completionTokens() / seconds : 0;
    }

    /** The printed summary. */
    public String table() {
        StringBuilder s = new StringBuilder();
        s.append("============ Eval Result (exact match, greedy) ============\n");
        s.append(String.format("%-34s %s%n", "Model:", model));
        s.append(String.format("%-34s %d%n", "Max request concurrency:", concurrency));
        s.append(String.format("%-34s %d%n", "Items:", items()));
        s.append(String.format("%-34s %d%n", "Failed requests:", failed()));
        s.append(String.format("%-34s %.4f (%d/%d)%n", "Accuracy:", accuracy(), correct(), items()));
        accuracyPerTask().forEach((task, acc) -> s.append(String.format("  %-32s %.4f%n", task + ":", acc)));
        s.append(String.format("%-34s %.2f%n", "Duration (s):", seconds));
        s.append(String.format("%-34s %d%n", "Output tokens:", completionTokens()));
        s.append(String.format("%-34s %.1f%n", "Output tokens/s:", tokensPerSecond()));
        s.append(String.format("%-34s %s%n", "Accept length:", acceptLength.isPresent()
                ? String.format("%.3f", acceptLength.getAsDouble()) : "n/a (the server reports no speculation)"));
        s.append("==========================================================\n");
        return s.toString();
    }

    /** The first few wrong answers, for the log. */
    public String mistakes(int atMost) {
        StringBuilder s = new StringBuilder();
        outcomes.stream().filter(o -> !o.correct()).limit(atMost).forEach(o -> s.append(String.format(
                "  %s [%s] expected %s, got %s%n", o.item().id(), o.item().task(), quote(o.item().answer()),
                o.error() != null ? "error " + o.error() : quote(o.reply()))));
        return s.toString();
    }

    private static String quote(String s) {
        return com.fasterxml.jackson.databind.node.TextNode.valueOf(s).toString();
    }

    /** The figures as one JSON object (per-task accuracy included; no per-item outputs). */
    public ObjectNode json() {
        ObjectNode o = BenchJson.MAPPER.createObjectNode();
        o.put("model", model).put("concurrency", concurrency).put("items", items()).put("failed", failed())
                .put("correct", correct()).put("accuracy", accuracy()).put("seconds", seconds)
                .put("completion_tokens", completionTokens()).put("output_tokens_per_second", tokensPerSecond());
        ObjectNode per = o.putObject("accuracy_per_task");
        accuracyPerTask().forEach(per::put);
        if (acceptLength.isPresent()) {
            o.put("accept_length", acceptLength.getAsDouble());
        } else {
            o.putNull("accept_length");
        }
        return o;
    }
}
