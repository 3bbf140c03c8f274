package io.jemma.bench;

import java.util.HashMap;
import java.util.Map;
import java.util.OptionalDouble;

/** Reads figures out of a Prometheus text exposition (what {@code /q/metrics} answers). */
public final class PrometheusText {

    private PrometheusText() {
    }

    /**
     * The speculative accept length over a run, from two scrapes of a server's metrics: the first metric
     * whose name contains {@code accept_length}. A histogram or summary (its {@code _sum} and {@code _count})
     * gives the mean over the rounds between the scrapes; a gauge gives its value in the second scrape.
     * Empty when the server has no such metric (no speculation) or no round ran in between.
     */
    public static OptionalDouble acceptLength(String before, String after) {
        Map<String, Double> a = sums(before);
        Map<String, Double> b = sums(after);
        for (String name : b.keySet()) {
            if (!name.contains("accept_length") || !name.endsWith("_count")) {
                continue;
            }
            String base = name.substring(0, name.length() - "_count".length());
            if (b.containsKey(base + "_sum")) {
                double rounds = b.get(name) - a.getOrDefault(name, 0.0);
                double accepted = b.get(base + "_sum") - a.getOrDefault(base + "_sum", 0.0);
                return rounds > 0 ? OptionalDouble.of(accepted / rounds) : OptionalDouble.empty();
            }
        }
        for (var e : b.entrySet()) {
            String name = e.getKey();
            if (name.contains("accept_length") && !name.endsWith("_sum") && !name.endsWith("_bucket")
                    && !name.endsWith("_max")) {
                return OptionalDouble.of(e.getValue());
            }
        }
        return OptionalDouble.empty();
    }

    /** Each metric name's value, summed over its label sets (bucket lines included under their own name). */
    static Map<String, Double> sums(String text) {
        Map<String, Double> out = new HashMap<>();
        for (String line : text.split("\n")) {
            String l = line.strip();
            if (l.isEmpty() || l.startsWith("#")) {
                continue;
            }
            int nameEnd = 0;
            while (nameEnd < l.length() && l.charAt(nameEnd) != '{' && l.charAt(nameEnd) != ' ') {
                nameEnd++;
            }
            String name = l.substring(0, nameEnd);
            int valueStart = l.charAt(Math.min(nameEnd, l.length() - 1)) == '{' ? l.lastIndexOf('}') + 1 : nameEnd;
            String[] rest = l.substring(valueStart).strip().split("\\s+");
            try {
                out.merge(name, Double.parseDouble(rest[0]), Double::sum);
            } catch (NumberFormatException | ArrayIndexOutOfBoundsException e) {
                // not a sample line: ignored
            }
        }
        return out;
    }
}
