package io.jemma.engine.sampling;

import org.junit.jupiter.api.Test;

import java.util.function.ToIntFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative sampling keeps the target's distribution: on a six-token vocabulary with a fixed seed, the tokens
 * that come out of draft + verify are counted and tested against p with a chi-square bound (p = 0.001), which
 * the two classic mistakes (keeping every draft; drawing a rejected position from p instead of the residual)
 * are shown to fail by far.
 */
class SpeculativeSamplingTest {
    private static final int TRIALS = 40_000;
    /** chi-square critical values at p = 0.001 by degrees of freedom (cells with mass - 1). */
    private static final java.util.Map<Integer, Double> CRITICAL = java.util.Map.of(3, 16.27, 5, 20.52, 15, 37.70);

    // Target and draft at the engine's temperature, filtered (top-k 4 drops two tokens of each), from
    // the same logits the engine would see.
    private static final SamplingParams FILTERED = new SamplingParams(0.9, 4, 1.0, 0.0, 5);
    private static final float[] TARGET_LOGITS = {2.0f, 0.3f, 1.5f, -0.5f, 1.1f, 0.0f};
    private static final float[] DRAFT_LOGITS = {0.2f, 2.2f, 1.4f, 0.1f, -1.0f, 0.9f};

    @Test
    void aSampledDraftTokenComesOutDistributedAsTheTarget() {
        Sampler sampler = new Sampler(FILTERED);
        float[] p = sampler.distribution(TARGET_LOGITS, 0, 6);
        float[] q = sampler.distribution(DRAFT_LOGITS, 0, 6);
        assertEquals(0f, p[3], "top-k filters the target");
        assertEquals(0f, q[4], "and the draft");
        double bound = critical(p);
        double good = chiSquare(p, counts(6, s -> SpeculativeSampling.sampled(p, q, s.draw(q), s).token()));
        assertTrue(good < bound, "chi-square " + good + " >= " + bound);
        assertTrue(chiSquare(p, counts(6, s -> s.draw(q))) > 50 * bound, "keeping every draft must fail");
        double fromP = chiSquare(p, counts(6, s -> {
            int d = s.draw(q);
            SpeculativeSampling.Result r = SpeculativeSampling.sampled(p, q, d, s);
            return r.accepted() ? r.token() : s.draw(p);
        }));
        assertTrue(fromP > 10 * bound, "drawing rejections from p must fail: " + fromP);
    }

    @Test
    void chosenCandidatesTriedInOrderComeOutDistributedAsTheTarget() {
        Sampler sampler = new Sampler(FILTERED);
        float[] p = sampler.distribution(TARGET_LOGITS, 0, 6);
        // The top-2 of a draft (chosen, not drawn); then candidates that include one the target rules out.
        for (int[] candidates : new int[][] {{1, 2}, {0, 2, 4}, {3, 5}}) {
            double chi2 = chiSquare(p, counts(6, s -> SpeculativeSampling.candidates(p, candidates, s).token()));
            assertTrue(chi2 < critical(p), java.util.Arrays.toString(candidates) + ": chi-square " + chi2);
        }
        // Without renormalizing after a rejection, the second candidate comes out too rarely.
        double wrong = chiSquare(p, counts(6, s -> {
            for (int c : new int[] {0, 2}) {
                if (s.uniform() < p[c]) {
                    return c;
                }
            }
            float[] rest = p.clone();
            rest[0] = 0;
            rest[2] = 0;
            return s.draw(rest);
        }));
        assertTrue(wrong > 10 * critical(p), "unrenormalized candidates must fail: " + wrong);
    }

    @Test
    void twoChainedPositionsKeepTheJointDistribution() {
        // Round: d1 ~ q1, d2 ~ q2; verify position 1, then position 2 only if d1 was kept. A rejected position 1
        // ends the round; the next round's first position (any draft) is distributed as p2 (shown above), which is
        // what the second token is drawn from here.
        Sampler sampler = new Sampler(FILTERED);
        float[] p1 = sampler.distribution(TARGET_LOGITS, 0, 6);
        float[] q1 = sampler.distribution(DRAFT_LOGITS, 0, 6);
        float[] p2 = sampler.distribution(DRAFT_LOGITS, 0, 6);   // a different target at position 2
        float[] q2 = sampler.distribution(TARGET_LOGITS, 0, 6);
        float[] joint = new float[36];
        for (int a = 0; a < 6; a++) {
            for (int b = 0; b < 6; b++) {
                joint[a * 6 + b] = p1[a] * p2[b];
            }
        }
        double chi2 = chiSquare(joint, counts(36, s -> {
            int d1 = s.draw(q1);
            int d2 = s.draw(q2);
            SpeculativeSampling.Result first = SpeculativeSampling.sampled(p1, q1, d1, s);
            int second = first.accepted() ? SpeculativeSampling.sampled(p2, q2, d2, s).token()
                    : SpeculativeSampling.sampled(p2, q2, s.draw(q2), s).token();
            return first.token() * 6 + second;
        }));
        assertTrue(chi2 < critical(joint), "chi-square " + chi2);
    }

    @Test
    void identicalDistributionsKeepEveryDraft() {
        Sampler s = new Sampler(FILTERED);
        float[] p = s.distribution(TARGET_LOGITS, 0, 6);
        for (int i = 0; i < 1000; i++) {
            int d = s.draw(p);
            assertEquals(new SpeculativeSampling.Result(d, 0), SpeculativeSampling.sampled(p, p, d, s));
        }
    }

    private static double critical(float[] p) {
        int cells = 0;
        for (float x : p) {
            cells += x > 0 ? 1 : 0;
        }
        return CRITICAL.get(cells - 1);
    }

    private static int[] counts(int cells, ToIntFunction<Sampler> trial) {
        Sampler s = new Sampler(new SamplingParams(1.0, 0, 1.0, 0, 20_261_125));
        int[] counts = new int[cells];
        for (int i = 0; i < TRIALS; i++) {
            counts[trial.applyAsInt(s)]++;
        }
        return counts;
    }

    /** Pearson's statistic over the cells the distribution gives mass to; any count elsewhere is infinitely wrong. */
    private static double chiSquare(float[] p, int[] counts) {
        double total = 0;
        for (float x : p) {
            total += x;
        }
        double chi2 = 0;
        for (int i = 0; i < p.length; i++) {
            double expected = TRIALS * p[i] / total;
            if (expected == 0) {
                if (counts[i] > 0) {
                    return Double.POSITIVE_INFINITY;
                }
                continue;
            }
            chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
        }
        return chi2;
    }
}
