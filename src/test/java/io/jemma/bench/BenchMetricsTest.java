package io.jemma.bench;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The formulas of sglang's calculate_metrics on hand-made results, where every figure is known exactly. */
class BenchMetricsTest {

    private static final long S = 1_000_000_000L;

    /** A successful request sent at {@code sentS} with text chunks at the given times (s from sending). */
    private static RequestResult ok(double sentS, int usageOut, double latency, double... chunkTimes) {
        double[] itl = new double[chunkTimes.length - 1];
        for (int i = 1; i < chunkTimes.length; i++) {
            itl[i - 1] = chunkTimes[i] - chunkTimes[i - 1];
        }
        return new RequestResult(new Prompt("p", 10, 4), true, "", (long) (sentS * S), chunkTimes[0], latency, itl,
                chunkTimes, "a b c", usageOut >= 0 ? 12 : -1, usageOut);
    }

    @Test
    void figuresFromAFixedRun() {
        var a = ok(0, 4, 0.5, 0.2, 0.3, 0.4, 0.5); // TTFT 200, ITLs 100 x 3, TPOT (500 - 200) / 3 = 100
        var b = ok(0.5, 4, 1.0, 0.4, 0.6, 0.8, 1.0); // TTFT 400, ITLs 200 x 3, TPOT 200
        var failed = RequestResult.failed(new Prompt("p", 10, 4), 0, 0.1, "HTTP 500: boom");
        var run = new LoadRunner.Run(List.of(a, b, failed), 0, 2.0, 0, false);

        BenchMetrics m = BenchMetrics.compute(run, null);

        assertEquals(2, m.completed());
        assertEquals(1, m.failed());
        assertEquals(24, m.totalInput(), "usage prompt tokens, 12 each");
        assertEquals(8, m.totalOutput());
        assertEquals(-1, m.totalOutputRetokenized());
        assertEquals(1.0, m.requestThroughput(), 1e-12);
        assertEquals(12.0, m.inputThroughput(), 1e-12);
        assertEquals(4.0, m.outputThroughput(), 1e-12);
        assertEquals(16.0, m.totalThroughput(), 1e-12);
        assertEquals(0.75, m.concurrency(), 1e-12, "(0.5 + 1.0) / 2.0");
        assertEquals(300, m.ttftMs().mean(), 1e-9);
        assertEquals(300, m.ttftMs().median(), 1e-9);
        assertEquals(150, m.itlMs().mean(), 1e-9);
        assertEquals(200, m.itlMs().max(), 1e-9);
        assertEquals(150, m.tpotMs().mean(), 1e-9);
        assertEquals(750, m.e2eMs().mean(), 1e-9);
        assertEquals(995, m.e2eMs().p99(), 1e-9, "numpy: 500 + 0.99 * 500");
        assertEquals(2, m.peakConcurrent(), "the failed request overlaps both");
        // b's chunks arrive 0.9, 1.1, 1.3, 1.5 s into the run: second 0 holds a's 4 and b's first, second 1 the rest.
        assertEquals(5, m.peakOutputThroughput(), 1e-9);
    }

    @Test
    void withoutUsageTokensAreRetokenizedOrCounted() {
        var noUsage = ok(0, -1, 0.3, 0.1, 0.2, 0.3);
        var run = new LoadRunner.Run(List.of(noUsage), 0, 1.0, 0, false);
        assertEquals(3, BenchMetrics.compute(run, null).totalOutput(), "one token per text chunk");
        assertEquals(10, BenchMetrics.compute(run, null).totalInput(), "the workload's input length");
        BenchMetrics retokenized = BenchMetrics.compute(run, text -> 7);
        assertEquals(7, retokenized.totalOutput());
        assertEquals(7, retokenized.totalOutputRetokenized());
    }

    @Test
    void aSingleTokenHasNoTpot() {
        var one = ok(0, 1, 0.2, 0.2);
        BenchMetrics m = BenchMetrics.compute(new LoadRunner.Run(List.of(one), 0, 1.0, 0, false), null);
        assertEquals(Stats.Summary.EMPTY, m.tpotMs());
        assertEquals(Stats.Summary.EMPTY, m.itlMs());
        assertEquals(200, m.ttftMs().mean(), 1e-9);
    }

    @Test
    void argumentsParseAsSglangWritesThem() {
        BenchArgs args = BenchArgs.parse(new String[] {"--base-url=http://127.0.0.1:9/", "--request-rate", "inf",
            "--backend-api", "completions", "--dataset", "generated-shared-prefix", "--disable-ignore-eos"});
        assertEquals("http://127.0.0.1:9", args.baseUrl().toString());
        assertEquals(Double.POSITIVE_INFINITY, args.requestRate());
        assertEquals(Api.COMPLETIONS, args.api());
        assertEquals(BenchArgs.Dataset.GENERATED_SHARED_PREFIX, args.dataset());
        assertEquals(-1, args.numPrompts(), "all groups x prompts");
        assertEquals(false, args.ignoreEos());
        assertEquals(1000, BenchArgs.parse(new String[] {"--seed", "3"}).numPrompts());
        assertThrows(IllegalArgumentException.class, () -> BenchArgs.parse(new String[] {"--bogus", "1"}));
        assertThrows(IllegalArgumentException.class, () -> BenchArgs.parse(new String[] {"--request-rate", "0"}));
        assertThrows(IllegalArgumentException.class, () -> BenchArgs.parse(new String[] {"--num-prompts"}));
    }
}
