package io.jemma.bench;

import java.util.Locale;

/**
 * The "Serving Benchmark Result" block in sglang bench_serving's layout: labels left-aligned in 40 columns,
 * values in 10, section rules of 50 characters centred the way Python's {@code str.format} centres them.
 * One line sglang does not print is added: failed requests.
 */
public final class ResultTable {

    private ResultTable() {
    }

    /** What the table says about the load: the backend label, the rate and the concurrency limit. */
    public record Header(String backend, double requestRate, int maxConcurrency) {
    }

    public static String format(Header header, BenchMetrics m) {
        StringBuilder out = new StringBuilder();
        out.append('\n').append(rule(" Serving Benchmark Result ", '=')).append('\n');
        row(out, "Backend:", header.backend());
        row(out, "Traffic request rate:", pythonFloat(header.requestRate()));
        row(out, "Max request concurrency:", header.maxConcurrency() > 0 ? header.maxConcurrency() : "not set");
        row(out, "Successful requests:", m.completed());
        row(out, "Failed requests:", m.failed());
        row(out, "Benchmark duration (s):", m.durationS());
        row(out, "Total input tokens:", m.totalInput());
        row(out, "Total generated tokens:", m.totalOutput());
        row(out, "Total generated tokens (retokenized):",
                m.totalOutputRetokenized() >= 0 ? m.totalOutputRetokenized() : "n/a");
        row(out, "Request throughput (req/s):", m.requestThroughput());
        row(out, "Input token throughput (tok/s):", m.inputThroughput());
        row(out, "Output token throughput (tok/s):", m.outputThroughput());
        row(out, "Peak output token throughput (tok/s):", m.peakOutputThroughput());
        row(out, "Peak concurrent requests:", m.peakConcurrent());
        row(out, "Total token throughput (tok/s):", m.totalThroughput());
        row(out, "Concurrency:", m.concurrency());
        out.append(rule("End-to-End Latency", '-')).append('\n');
        row(out, "Mean E2E Latency (ms):", m.e2eMs().mean());
        row(out, "Median E2E Latency (ms):", m.e2eMs().median());
        row(out, "P90 E2E Latency (ms):", m.e2eMs().p90());
        row(out, "P99 E2E Latency (ms):", m.e2eMs().p99());
        out.append(rule("Time to First Token", '-')).append('\n');
        row(out, "Mean TTFT (ms):", m.ttftMs().mean());
        row(out, "Median TTFT (ms):", m.ttftMs().median());
        row(out, "P99 TTFT (ms):", m.ttftMs().p99());
        out.append(rule("Time per Output Token (excl. 1st token)", '-')).append('\n');
        row(out, "Mean TPOT (ms):", m.tpotMs().mean());
        row(out, "Median TPOT (ms):", m.tpotMs().median());
        row(out, "P99 TPOT (ms):", m.tpotMs().p99());
        out.append(rule("Inter-Token Latency", '-')).append('\n');
        row(out, "Mean ITL (ms):", m.itlMs().mean());
        row(out, "Median ITL (ms):", m.itlMs().median());
        row(out, "P95 ITL (ms):", m.itlMs().p95());
        row(out, "P99 ITL (ms):", m.itlMs().p99());
        row(out, "Max ITL (ms):", m.itlMs().max());
        out.append("=".repeat(50)).append('\n');
        return out.toString();
    }

    /** Python's {@code "{:<40} {:<10}"}, with floats as {@code {:<10.2f}}. */
    private static void row(StringBuilder out, String label, Object value) {
        String text = value instanceof Double d ? String.format(Locale.ROOT, "%.2f", d) : String.valueOf(value);
        out.append(String.format(Locale.ROOT, "%-40s %-10s", label, text)).append('\n');
    }

    /** Python's {@code "{s:{c}^{n}}"} with n = 50: the odd fill character goes to the right. */
    static String rule(String title, char fill) {
        int pad = Math.max(0, 50 - title.length());
        int left = pad / 2;
        return String.valueOf(fill).repeat(left) + title + String.valueOf(fill).repeat(pad - left);
    }

    /** How Python prints the rate sglang keeps as a float: {@code inf}, {@code 4.0}, {@code 0.5}. */
    static String pythonFloat(double value) {
        if (Double.isInfinite(value)) {
            return value > 0 ? "inf" : "-inf";
        }
        return Double.toString(value);
    }
}
