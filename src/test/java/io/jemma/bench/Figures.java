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
    private static final String LOAD = "load@";

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

    /** Records a figure, with the system's load average: on a shared machine, a high one means a doubtful figure. */
    static synchronized void add(String key, double value) {
        try {
            Files.createDirectories(DIR);
            String line = key + " " + value + "\n" + LOAD + key + " " + loadAverage() + "\n";
            Files.writeString(FILE, line, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The 1-minute load average, or NaN where /proc/loadavg is missing. */
    static double loadAverage() {
        try {
            return Double.parseDouble(Files.readString(Path.of("/proc/loadavg")).split(" ")[0]);
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
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
                    String key = line.substring(0, space);
                    double value = Double.parseDouble(line.substring(space + 1));
                    // Per-thread figures add up; loads of the threads of one trial are the same reading.
                    figures.merge(key, value, key.startsWith(LOAD) ? Math::max : Double::sum);
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
        out.append("(load: the 1-minute load average when the figure was taken; the benchmark itself keeps all "
                + Runtime.getRuntime().availableProcessors() + " cores busy,\n so clearly more means something else ran"
                + " meanwhile and the figure is doubtful)\n");
        out.append(String.format("FMA peak (all cores)         %8.1f GFLOP/s  load %.1f%n", nan(peak), load(f, MatmulBenchmark.FMA_PEAK)));
        out.append(String.format("copy bandwidth (read+write)  %8.1f GB/s     load %.1f%n", nan(copy), load(f, MatmulBenchmark.COPY)));
        out.append(String.format("read bandwidth               %8.1f GB/s     load %.1f%n", nan(read), load(f, MatmulBenchmark.READ)));
        for (Map.Entry<String, Double> e : f.entrySet()) {
            String key = e.getKey();
            double v = e.getValue();
            if (key.startsWith(MatmulBenchmark.PREFILL)) {
                out.append(String.format("%-44s %8.1f GFLOP/s  %5.1f%% of FMA peak                    load %.1f%n",
                        key, v, percent(v, peak), load(f, key)));
            } else if (key.startsWith(MatmulBenchmark.DECODE)) {
                out.append(String.format("%-44s %8.1f GB/s     %5.1f%% of copy, %5.1f%% of read bandwidth  load %.1f%n",
                        key, v, percent(v, copy), percent(v, read), load(f, key)));
            }
        }
        System.out.print(out);
        try {
            Files.writeString(SUMMARY, out.toString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static double load(Map<String, Double> figures, String key) {
        return nan(figures.get(LOAD + key));
    }

    private static double nan(Double d) {
        return d == null ? Double.NaN : d;
    }

    private static double percent(double v, Double reference) {
        return reference == null ? Double.NaN : 100 * v / reference;
    }
}
