package io.jemma.bench;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Expected values are numpy's: np.percentile (linear), np.median, np.std (ddof 0). */
class StatsTest {

    @Test
    void matchesNumpyOnFixedArrays() {
        double[] four = {4, 1, 3, 2};
        assertEquals(2.5, Stats.mean(four), 1e-12);
        assertEquals(2.5, Stats.percentile(four, 50), 1e-12);
        assertEquals(3.7, Stats.percentile(four, 90), 1e-12);
        assertEquals(3.97, Stats.percentile(four, 99), 1e-12);
        assertEquals(Math.sqrt(1.25), Stats.std(four), 1e-12);

        double[] five = {15, 20, 35, 40, 50};
        assertEquals(35, Stats.percentile(five, 50), 1e-12);
        assertEquals(46, Stats.percentile(five, 90), 1e-12); // rank 3.6: 40 + 0.6 * 10
        assertEquals(48, Stats.percentile(five, 95), 1e-12);
        assertEquals(49.6, Stats.percentile(five, 99), 1e-12);
        assertEquals(15, Stats.percentile(five, 0), 1e-12);
        assertEquals(50, Stats.percentile(five, 100), 1e-12);
        assertEquals(Math.sqrt(166), Stats.std(five), 1e-12); // mean 32; squares 289 + 144 + 9 + 64 + 324 = 830

        var s = Stats.summarize(five);
        assertEquals(32, s.mean(), 1e-12);
        assertEquals(35, s.median(), 1e-12);
        assertEquals(Math.sqrt(166), s.std(), 1e-12);
        assertEquals(46, s.p90(), 1e-12);
        assertEquals(48, s.p95(), 1e-12);
        assertEquals(49.6, s.p99(), 1e-12);
        assertEquals(50, s.max(), 1e-12);
        assertEquals(46_000, s.scaled(1000).p90(), 1e-9);
    }

    @Test
    void oneValueAndNoValues() {
        assertEquals(new Stats.Summary(7, 7, 0, 7, 7, 7, 7), Stats.summarize(new double[] {7}));
        assertEquals(Stats.Summary.EMPTY, Stats.summarize(new double[0]), "sglang reports 0 for an empty sample");
    }
}
