package io.jemma.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The figures of one benchmark run, kept in a file because JMH runs every benchmark in its own JVM: each trial
 * appends "key value" lines (threads of one trial append one line each, summed on reading), and the matmul trials
 * read the machine's reference figures (FMA peak, bandwidths) back to print their ratios.
 */
final class Figures {

    static final Path DIR = Path.of("target", "matmul-bench");
    static final Path FILE = DIR.resolve("figures.txt");
    static final Path SUMMARY = DIR.resolve("summary.txt");

    private Figures() {
    }

    /** Starts a new run: forgets the figures of earlier runs. */
    static synchronized void reset() {
        try {
            Files.createDirectories(DIR);
            Files.deleteIfExists(FILE);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static synchronized void add(String key, double value) {
        try {
            Files.createDirectories(DIR);
            Files.writeString(FILE, key + " " + value + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Everything recorded so far in this run, in order of first appearance, per-thread lines summed. */
    static synchronized Map<String, Double> read() {
        Map<String, Double> figures = new LinkedHashMap<>();
        try {
            List<String> lines = Files.exists(FILE) ? Files.readAllLines(FILE) : List.of();
            for (String line : lines) {
                int space = line.lastIndexOf(' ');
                if (space > 0) {
                    figures.merge(line.substring(0, space), Double.parseDouble(line.substring(space + 1)), Double::sum);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return figures;
    }

    /** Prints (and saves) the table of this run's figures so far, with each matmul's ratio to its bound. */
    static synchronized void printSummary() {
        Map<String, Double> f = read();
        Double peak = f.get(MatmulBenchmark.FMA_PEAK);
        Double copy = f.get(MatmulBenchmark.COPY);
        Double read = f.get(MatmulBenchmark.READ);
        StringBuilder out = new StringBuilder("\n=== Matmul benchmark summary (this run so far) ===\n");
        out.append(String.format("FMA peak (all cores)         %8.1f GFLOP/s%n", nan(peak)));
        out.append(String.format("copy bandwidth (read+write)  %8.1f GB/s%n", nan(copy)));
        out.append(String.format("read bandwidth               %8.1f GB/s%n", nan(read)));
        for (Map.Entry<String, Double> e : f.entrySet()) {
            String key = e.getKey();
            double v = e.getValue();
            if (key.startsWith(MatmulBenchmark.PREFILL)) {
                out.append(String.format("%-44s %8.1f GFLOP/s  %5.1f%% of FMA peak%n", key, v, percent(v, peak)));
            } else if (key.startsWith(MatmulBenchmark.DECODE)) {
                out.append(String.format("%-44s %8.1f GB/s     %5.1f%% of copy, %5.1f%% of read bandwidth%n",
                        key, v, percent(v, copy), percent(v, read)));
            }
        }
        System.out.print(out);
        try {
            Files.writeString(SUMMARY, out.toString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static double nan(Double d) {
        return d == null ? Double.NaN : d;
    }

    private static double percent(double v, Double reference) {
        return reference == null ? Double.NaN : 100 * v / reference;
    }
}
