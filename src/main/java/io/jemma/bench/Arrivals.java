package io.jemma.bench;

import java.util.Random;

/**
 * When each request is sent, in seconds from the start of the run: a Poisson process at the given rate
 * (exponential gaps, as sglang's {@code get_request}), or all at once for an infinite rate. The first request
 * goes at 0, and each gap follows a send, as in sglang.
 */
public final class Arrivals {

    private Arrivals() {
    }

    public static double[] schedule(int count, double requestsPerSecond, Random rng) {
        if (!(requestsPerSecond > 0)) {
            throw new IllegalArgumentException("--request-rate must be positive or inf, not " + requestsPerSecond);
        }
        double[] at = new double[count];
        if (Double.isInfinite(requestsPerSecond)) {
            return at;
        }
        for (int i = 1; i < count; i++) {
            // Inverse transform sampling; 1 - u is in (0, 1], so the log is finite.
            at[i] = at[i - 1] - Math.log(1 - rng.nextDouble()) / requestsPerSecond;
        }
        return at;
    }
}
