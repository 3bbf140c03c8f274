package io.jemma.engine.sampling;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {
    private static final float[] LOGITS = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f};

    @Test
    void greedyTakesTheLargestLogit() {
        assertEquals(1, new Sampler(SamplingParams.GREEDY).sample(LOGITS, 0, LOGITS.length));
    }

    @Test
    void theSameSeedGivesTheSameTokens() {
        var p = new SamplingParams(1.0, 0, 1.0, 0, 42);
        Sampler a = new Sampler(p);
        Sampler b = new Sampler(p);
        for (int i = 0; i < 100; i++) {
            assertEquals(a.sample(LOGITS, 0, 5), b.sample(LOGITS, 0, 5));
        }
    }

    @Test
    void topKKeepsOnlyTheKMostLikely() {
        Sampler s = new Sampler(new SamplingParams(5.0, 2, 1.0, 0, 1));
        for (int i = 0; i < 500; i++) {
            int t = s.sample(LOGITS, 0, 5);
            assertTrue(t == 1 || t == 4, "token " + t);
        }
    }

    @Test
    void topPKeepsTheSmallestSetReachingP() {
        // probabilities at temperature 1: token 1 ~ 0.39, token 4 ~ 0.35, token 2 ~ 0.14 ...
        Sampler s = new Sampler(new SamplingParams(1.0, 0, 0.5, 0, 1));
        for (int i = 0; i < 500; i++) {
            int t = s.sample(LOGITS, 0, 5);
            assertTrue(t == 1 || t == 4, "token " + t);
        }
    }

    @Test
    void minPDropsUnlikelyTokens() {
        Sampler s = new Sampler(new SamplingParams(1.0, 0, 1.0, 0.5, 1));
        for (int i = 0; i < 500; i++) {
            int t = s.sample(LOGITS, 0, 5);
            assertTrue(t == 1 || t == 4, "token " + t);
        }
    }

    @Test
    void samplingFollowsTheDistribution() {
        Sampler s = new Sampler(new SamplingParams(1.0, 0, 1.0, 0, 9));
        int[] counts = new int[5];
        int n = 20_000;
        for (int i = 0; i < n; i++) {
            counts[s.sample(LOGITS, 0, 5)]++;
        }
        double z = 0;
        for (float l : LOGITS) {
            z += Math.exp(l);
        }
        for (int t = 0; t < 5; t++) {
            double expected = Math.exp(LOGITS[t]) / z;
            assertEquals(expected, counts[t] / (double) n, 0.02, "token " + t);
        }
        assertNotEquals(0, counts[3]);
    }

    @Test
    void badParametersAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(-1, 0, 1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(Double.NaN, 0, 1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1, 0, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1, 0, 1, 2, 0));
    }
}
