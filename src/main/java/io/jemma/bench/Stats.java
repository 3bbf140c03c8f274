package io.jemma.bench;

import java.util.Arrays;

/**
 * The statistics bench_serving takes with numpy, computed the same way: percentiles by linear interpolation
 * between closest ranks ({@code np.percentile}'s default), standard deviation over the population
 * ({@code np.std}, ddof 0), and 0 for an empty sample (sglang's {@code np.mean(xs or 0)}).
 */
public final class Stats {

    private Stats() {
    }

    /** Mean, median, spread and tail of one latency, in the unit given (sglang reports milliseconds). */
    public record Summary(double mean, double median, double std, double p90, double p95, double p99, double max) {
        public static final Summary EMPTY = new Summary(0, 0, 0, 0, 0, 0, 0);

        Summary scaled(double factor) {
            return new Summary(mean * factor, median * factor, std * factor, p90 * factor, p95 * factor,
                    p99 * factor, max * factor);
        }
    }

    public static Summary summarize(double[] values) {
        if (values.length == 0) {
            return Summary.EMPTY;
        }
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return new Summary(mean(values), percentileOfSorted(sorted, 50), std(values), percentileOfSorted(sorted, 90),
                percentileOfSorted(sorted, 95), percentileOfSorted(sorted, 99), sorted[sorted.length - 1]);
    }

    public static double mean(double[] values) {
        if (values.length == 0) {
            return 0;
        }
        double sum = 0;
        for (double v : values) {
            sum += v;
        }
        return sum / values.length;
    }

    /** Population standard deviation, two-pass for accuracy. */
    public static double std(double[] values) {
        if (values.length == 0) {
            return 0;
        }
        double mean = mean(values);
        double squares = 0;
        for (double v : values) {
            squares += (v - mean) * (v - mean);
        }
        return Math.sqrt(squares / values.length);
    }

    /** The q-th percentile (0..100), numpy's "linear" method. */
    public static double percentile(double[] values, double q) {
        if (values.length == 0) {
            return 0;
        }
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return percentileOfSorted(sorted, q);
    }

    static double percentileOfSorted(double[] sorted, double q) {
        if (!(q >= 0 && q <= 100)) {
            throw new IllegalArgumentException("percentile must be in [0, 100], not " + q);
        }
        double rank = q / 100 * (sorted.length - 1);
        int below = (int) Math.floor(rank);
        int above = Math.min(below + 1, sorted.length - 1);
        double fraction = rank - below;
        return sorted[below] + (sorted[above] - sorted[below]) * fraction;
    }
}
