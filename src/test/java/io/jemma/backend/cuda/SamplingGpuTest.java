package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.gpu;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.backend.Tensor;
import io.jemma.engine.sampling.HostSampling;
import io.jemma.engine.sampling.LogitsProcessor;
import io.jemma.engine.sampling.Penalties;
import io.jemma.engine.sampling.SampleResult;
import io.jemma.engine.sampling.Sampler;
import io.jemma.engine.sampling.SamplingBatch;
import io.jemma.engine.sampling.SamplingParams;
import io.jemma.engine.sampling.SamplingRow;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Sampling on the device (sampling.cu) against the host: greedy is the host's argmax exactly (ties to the
 * lower index, penalties and masks applied the same way); temperature draws follow softmax(logits / T)
 * (a chi-square test over 20,000 draws); top-k, top-p and min-p never let a token outside the allowed
 * set through; logprobs are the host's log softmax; a (seed, draw) picks the same token whatever the
 * batch. Draws are counter-based, so these tests are deterministic once they pass.
 */
@Tag("gpu")
class SamplingGpuTest {
    private static final int VOCAB = 262144;

    private static Tensor logits(float[] values, int rows, int vocab) {
        return gpu().fromHost(values, rows, vocab);
    }

    private static float[] gaussian(SplittableRandom r, int n, double sd) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            // Box-Muller from the test's seeded stream.
            double u = Math.max(1e-12, r.nextDouble());
            v[i] = (float) (sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.nextDouble()));
        }
        return v;
    }

    private static SamplingRow row(SamplingParams p, long draw) {
        return new SamplingRow(p, null, null, Set.of(), -1, draw);
    }

    @Test
    void greedyIsTheHostArgmaxWithPenaltiesAndMasks() {
        SplittableRandom r = GpuTests.random("sampling greedy");
        int rows = 6;
        float[] values = gaussian(r, rows * VOCAB, 3);
        values[2 * VOCAB + 1000] = 50;                   // a tie: the lower index wins
        values[2 * VOCAB + 200000] = 50;
        values[3 * VOCAB + 7] = 60;                      // masked as an end token below: the runner-up wins
        values[3 * VOCAB + 9] = 55;
        List<SamplingRow> list = new ArrayList<>();
        List<SamplingRow> hostRows = new ArrayList<>();
        for (int i = 0; i < rows; i++) {
            Penalties pen = i == 4 ? new Penalties(1.5, 0.5, 1.8) : Penalties.NONE;
            int[] prompt = {argmaxOf(values, i), 5, 9};
            LogitsProcessor device = new LogitsProcessor(pen, prompt);
            LogitsProcessor host = new LogitsProcessor(pen, prompt);
            for (int t : new int[] {argmaxOf(values, i), 11, 11}) {
                device.accept(t);
                host.accept(t);
            }
            Set<Integer> ends = i == 3 ? Set.of(7) : Set.of();
            list.add(new SamplingRow(SamplingParams.GREEDY, null, device, ends, -1, 0));
            hostRows.add(new SamplingRow(SamplingParams.GREEDY, new Sampler(SamplingParams.GREEDY), host, ends, -1, 0));
        }
        SampleResult gpuResult = gpu().sample(logits(values, rows, VOCAB), new SamplingBatch(list));
        SampleResult hostResult = HostSampling.sample(values.clone(), VOCAB, new SamplingBatch(hostRows));
        for (int i = 0; i < rows; i++) {
            GpuReport.check("sampling", "greedy row " + i, gpuResult.token(i) == hostResult.token(i) ? 0 : 1, 0,
                    gpuResult.token(i) == hostResult.token(i));
            assertEquals(hostResult.token(i), gpuResult.token(i), "greedy row " + i);
        }
        assertEquals(1000, gpuResult.token(2), "ties go to the lower index");
        assertEquals(9, gpuResult.token(3), "a masked end token is never picked");
    }

    private static int argmaxOf(float[] values, int row) {
        return Sampler.argmax(values, row * VOCAB, VOCAB);
    }

    /** Draws {@code n} tokens of one row of logits through the device sampler, {@code batch} rows per launch. */
    private static int[] draws(float[] logits, SamplingParams p, int n, int batch) {
        int vocab = logits.length;
        int[] out = new int[n];
        float[] block = new float[batch * vocab];
        for (int i = 0; i < batch; i++) {
            System.arraycopy(logits, 0, block, i * vocab, vocab);
        }
        for (int done = 0; done < n; done += batch) {
            int k = Math.min(batch, n - done);
            List<SamplingRow> rows = new ArrayList<>();
            for (int i = 0; i < k; i++) {
                rows.add(row(p, done + i));
            }
            SampleResult res = gpu().sample(logits(Arrays.copyOf(block, k * vocab), k, vocab), new SamplingBatch(rows));
            System.arraycopy(res.tokens(), 0, out, done, k);
        }
        return out;
    }

    /** softmax(logits / T) restricted to {@code allowed} (null: all). */
    private static double[] expected(float[] logits, double t, Set<Integer> allowed) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l / t);
        }
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            if (allowed == null || allowed.contains(i)) {
                p[i] = Math.exp(logits[i] / t - max);
                sum += p[i];
            }
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    /** Pearson's statistic over bins of expected count >= 5 (the rest pooled); returns {chi2, degrees of freedom}. */
    private static double[] chiSquare(int[] tokens, double[] p) {
        int[] counts = new int[p.length];
        for (int t : tokens) {
            counts[t]++;
        }
        double n = tokens.length;
        double chi = 0;
        int bins = 0;
        double pooledExpected = 0;
        double pooledObserved = 0;
        for (int i = 0; i < p.length; i++) {
            double e = p[i] * n;
            if (e >= 5) {
                chi += (counts[i] - e) * (counts[i] - e) / e;
                bins++;
            } else {
                pooledExpected += e;
                pooledObserved += counts[i];
            }
        }
        if (pooledExpected > 0) {
            chi += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / Math.max(pooledExpected, 1e-9);
            bins++;
        }
        return new double[] {chi, bins - 1};
    }

    /** The chi-square value above which a correct sampler lands with probability about 1e-6 (Wilson-Hilferty). */
    private static double critical(double df) {
        double z = 4.75;
        double a = 2 / (9 * df);
        return df * Math.pow(1 - a + z * Math.sqrt(a), 3);
    }

    private static void assertDistribution(String what, int[] tokens, double[] p) {
        double[] c = chiSquare(tokens, p);
        double limit = critical(c[1]);
        GpuReport.check("sampling", what + String.format(" chi2 %.1f, df %.0f", c[0], c[1]), c[0] / limit, 1, c[0] <= limit);
        assertTrue(c[0] <= limit, what + ": chi-square " + c[0] + " > " + limit + " at " + c[1] + " degrees of freedom");
    }

    @Test
    void temperatureDrawsFollowTheSoftmax() {
        SplittableRandom r = GpuTests.random("sampling chi-square");
        float[] logits = gaussian(r, 64, 1.5);
        SamplingParams p = new SamplingParams(0.7, 0, 1, 0, 1234);
        int[] tokens = draws(logits, p, 20_000, 1000);
        assertDistribution("T=0.7 over 64 tokens", tokens, expected(logits, 0.7, null));
        // The same (seed, draw) gives the same token, alone or in a batch.
        int[] again = draws(logits, p, 10, 10);
        assertEquals(Arrays.toString(Arrays.copyOf(tokens, 10)), Arrays.toString(again));
        int[] other = draws(logits, new SamplingParams(0.7, 0, 1, 0, 99), 1000, 1000);
        assertTrue(!Arrays.equals(Arrays.copyOf(tokens, 1000), other), "another seed, another stream");
    }

    /** The k largest (no ties in random floats). */
    private static Set<Integer> topK(float[] logits, int k) {
        Integer[] order = order(logits);
        return new HashSet<>(Arrays.asList(order).subList(0, k));
    }

    private static Integer[] order(float[] logits) {
        Integer[] order = new Integer[logits.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        return order;
    }

    /** The smallest most-likely set whose mass (at temperature t, among {@code within}) reaches p. */
    private static Set<Integer> topP(float[] logits, double t, double p, Set<Integer> within) {
        double[] probs = expected(logits, t, within);
        Set<Integer> out = new HashSet<>();
        double mass = 0;
        for (int i : order(logits)) {
            if (within != null && !within.contains(i)) {
                continue;
            }
            out.add(i);
            mass += probs[i];
            if (mass >= p) {
                break;
            }
        }
        return out;
    }

    private static Set<Integer> minP(float[] logits, double t, double minP, Set<Integer> within) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l / t);
        }
        Set<Integer> out = new HashSet<>();
        for (int i = 0; i < logits.length; i++) {
            if ((within == null || within.contains(i)) && Math.exp(logits[i] / t - max) >= minP) {
                out.add(i);
            }
        }
        return out;
    }

    private static void assertSupport(String what, int[] tokens, Set<Integer> allowed) {
        int outside = 0;
        Set<Integer> seen = new HashSet<>();
        for (int t : tokens) {
            if (!allowed.contains(t)) {
                outside++;
            }
            seen.add(t);
        }
        GpuReport.check("sampling", what + ": " + tokens.length + " draws, " + allowed.size() + " allowed, "
                + seen.size() + " seen", outside, 0, outside == 0);
        assertEquals(0, outside, what + ": draws outside the allowed set");
    }

    @Test
    void topKTopPAndMinPKeepTheirSupport() {
        SplittableRandom r = GpuTests.random("sampling support");
        float[] small = gaussian(r, 1000, 2);
        Set<Integer> k7 = topK(small, 7);
        int[] tk = draws(small, new SamplingParams(1.5, 7, 1, 0, 5), 4000, 1000);
        assertSupport("top-k 7 of 1000", tk, k7);
        assertDistribution("top-k 7 renormalized", tk, expected(small, 1.5, k7));

        Set<Integer> p6 = topP(small, 1.0, 0.6, null);
        int[] tp = draws(small, new SamplingParams(1.0, 0, 0.6, 0, 6), 4000, 1000);
        assertSupport("top-p 0.6 of 1000", tp, p6);
        assertDistribution("top-p 0.6 renormalized", tp, expected(small, 1.0, p6));

        Set<Integer> m2 = minP(small, 0.8, 0.2, null);
        assertSupport("min-p 0.2 of 1000", draws(small, new SamplingParams(0.8, 0, 1, 0.2, 7), 4000, 1000), m2);

        // All three at the real vocabulary size, with a masked end token among the likely ones.
        float[] full = gaussian(r, VOCAB, 2);
        Set<Integer> k50 = topK(full, 50);
        Set<Integer> allowed = minP(full, 1.2, 0.05, topP(full, 1.2, 0.9, k50));
        int masked = order(full)[0];
        allowed.remove(masked);
        List<SamplingRow> rows = new ArrayList<>();
        SamplingParams p = new SamplingParams(1.2, 50, 0.9, 0.05, 8);
        for (int i = 0; i < 64; i++) {
            rows.add(new SamplingRow(p, null, null, Set.of(masked), -1, i));
        }
        float[] block = new float[64 * VOCAB];
        for (int i = 0; i < 64; i++) {
            System.arraycopy(full, 0, block, i * VOCAB, VOCAB);
        }
        int[] tokens = gpu().sample(logits(block, 64, VOCAB), new SamplingBatch(rows)).tokens();
        // The mask comes before top-k/p (as on the host), so the allowed set is recomputed without it.
        float[] withoutMasked = full.clone();
        withoutMasked[masked] = Float.NEGATIVE_INFINITY;
        Set<Integer> k50m = topK(withoutMasked, 50);
        Set<Integer> allowedMasked = minP(withoutMasked, 1.2, 0.05, topP(withoutMasked, 1.2, 0.9, k50m));
        assertSupport("top-k 50, top-p 0.9, min-p 0.05 of 262144, top token masked", tokens, allowedMasked);
    }

    @Test
    void logprobsAreTheHostsLogSoftmax() {
        SplittableRandom r = GpuTests.random("sampling logprobs");
        int rows = 3;
        float[] values = gaussian(r, rows * VOCAB, 2);
        List<SamplingRow> list = new ArrayList<>();
        int[] tops = {5, 0, 20};
        for (int i = 0; i < rows; i++) {
            // Penalties change the pick, not the logprobs (they describe the raw distribution).
            LogitsProcessor proc = new LogitsProcessor(new Penalties(0.5, 0.5, 1.5), new int[] {argmaxOf(values, i)});
            proc.accept(argmaxOf(values, i));
            list.add(new SamplingRow(i == 1 ? SamplingParams.GREEDY : new SamplingParams(0.9, 40, 0.95, 0, i), null,
                    proc, Set.of(), tops[i], 3));
        }
        SampleResult res = gpu().sample(logits(values, rows, VOCAB), new SamplingBatch(list));
        double worst = 0;
        for (int i = 0; i < rows; i++) {
            float[] ls = HostSampling.logSoftmax(values, i * VOCAB, VOCAB);
            SampleResult.RowLogprobs want = HostSampling.top(ls, res.token(i), tops[i]);
            SampleResult.RowLogprobs got = res.logprobs(i);
            assertNotNull(got, "row " + i);
            assertEquals(Arrays.toString(want.topIds()), Arrays.toString(got.topIds()), "row " + i + " top ids");
            worst = Math.max(worst, Math.abs(want.chosen() - got.chosen()));
            for (int k = 0; k < tops[i]; k++) {
                worst = Math.max(worst, Math.abs(want.top()[k] - got.top()[k]));
            }
        }
        GpuReport.check("sampling", "logprobs vs host log softmax (max abs diff)", worst, 1e-4, worst <= 1e-4);
        assertTrue(worst <= 1e-4, "logprob difference " + worst);
    }
}
