package io.jemma.engine.sampling;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks tokens for one request from its logits: greedy, or temperature sampling filtered by top-k,
 * top-p and min-p (applied in that order, as sglang and vLLM do). Each sampler owns its random stream,
 * seeded per request, so a request's output does not depend on what else is in the batch.
 */
public final class Sampler {
    private final SamplingParams params;
    private final SplittableRandom random;

    public Sampler(SamplingParams params) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
    }

    public SamplingParams params() {
        return params;
    }

    /** The next token from {@code logits[offset, offset + vocab)}. */
    public int sample(float[] logits, int offset, int vocab) {
        if (params.greedy()) {
            return argmax(logits, offset, vocab);
        }
        Filtered f = filter(logits, offset, vocab);
        double u = random.nextDouble() * f.total;
        int last = -1;
        for (int i = 0; i < vocab; i++) {
            if (f.allowed[i]) {
                last = i;
                u -= f.probs[i];
                if (u < 0) {
                    return i;
                }
            }
        }
        return last;
    }

    /**
     * The distribution {@link #sample} draws from: softmax of {@code logits / temperature}, filtered by top-k,
     * top-p and min-p, renormalized ({@code [vocab]}, zero where filtered out). Speculative sampling compares the
     * target's and the draft's distributions in this form. Not for greedy parameters.
     */
    public float[] distribution(float[] logits, int offset, int vocab) {
        if (params.greedy()) {
            throw new IllegalStateException("greedy sampling has no distribution to compare");
        }
        Filtered f = filter(logits, offset, vocab);
        float[] p = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            if (f.allowed[i]) {
                p[i] = (float) (f.probs[i] / f.total);
            }
        }
        return p;
    }

    /** A token drawn from a distribution over {@code [0, p.length)} (weights need not sum to 1) with this stream. */
    public int draw(float[] p) {
        double total = 0;
        for (float x : p) {
            total += x;
        }
        double u = random.nextDouble() * total;
        int last = -1;
        for (int i = 0; i < p.length; i++) {
            if (p[i] > 0) {
                last = i;
                u -= p[i];
                if (u < 0) {
                    return i;
                }
            }
        }
        if (last < 0) {
            throw new IllegalArgumentException("an empty distribution");
        }
        return last;
    }

    /** A uniform draw in [0, 1) from this request's stream (speculative acceptance tests). */
    public double uniform() {
        return random.nextDouble();
    }

    /** Unnormalized probabilities and which tokens the filters keep. */
    private record Filtered(float[] probs, boolean[] allowed, double total) {
    }

    private Filtered filter(float[] logits, int offset, int vocab) {
        float[] probs = new float[vocab];
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[offset + i] / params.temperature());
        }
        for (int i = 0; i < vocab; i++) {
            probs[i] = (float) Math.exp(logits[offset + i] / params.temperature() - max);
        }
        Integer[] order = null;
        int kept = vocab;
        if (params.topK() > 0 && params.topK() < vocab || params.topP() < 1) {
            order = byProbability(probs);
            if (params.topK() > 0 && params.topK() < vocab) {
                kept = params.topK();
            }
            if (params.topP() < 1) {
                double mass = 0;
                double keptTotal = 0;
                for (int i = 0; i < kept; i++) {
                    keptTotal += probs[order[i]];
                }
                for (int i = 0; i < kept; i++) {
                    mass += probs[order[i]] / keptTotal;
                    if (mass >= params.topP()) {
                        kept = i + 1;
                        break;
                    }
                }
            }
        }
        boolean[] allowed = new boolean[vocab];
        float best = 0;
        if (order == null) {
            Arrays.fill(allowed, true);
        } else {
            for (int i = 0; i < kept; i++) {
                allowed[order[i]] = true;
            }
        }
        for (int i = 0; i < vocab; i++) {
            if (allowed[i]) {
                best = Math.max(best, probs[i]);
            }
        }
        double total = 0;
        for (int i = 0; i < vocab; i++) {
            if (allowed[i] && probs[i] < params.minP() * best) {
                allowed[i] = false;
            }
            if (allowed[i]) {
                total += probs[i];
            }
        }
        return new Filtered(probs, allowed, total);
    }

    /** Index of the largest logit; ties go to the lower index. */
    public static int argmax(float[] logits, int offset, int vocab) {
        int best = 0;
        for (int i = 1; i < vocab; i++) {
            if (logits[offset + i] > logits[offset + best]) {
                best = i;
            }
        }
        return best;
    }

    private static Integer[] byProbability(float[] probs) {
        Integer[] order = new Integer[probs.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(probs[b], probs[a]));
        return order;
    }
}
