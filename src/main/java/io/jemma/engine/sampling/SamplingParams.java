package io.jemma.engine.sampling;

/**
 * How to pick the next token from logits.
 *
 * @param temperature 0 = greedy; otherwise logits are divided by it before the softmax
 * @param topK        keep the k most likely tokens (0 or less: all)
 * @param topP        keep the smallest set whose probability reaches p (1: all)
 * @param minP        drop tokens less likely than minP times the most likely one (0: none)
 * @param seed        seed of this request's random stream (reproducible whatever else is batched)
 */
public record SamplingParams(double temperature, int topK, double topP, double minP, long seed) {

    public static final SamplingParams GREEDY = new SamplingParams(0, 0, 1, 0, 0);

    public SamplingParams {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        }
        if (!(minP >= 0 && minP <= 1)) {
            throw new IllegalArgumentException("min_p must be in [0, 1], got " + minP);
        }
    }

    public boolean greedy() {
        return temperature == 0;
    }
}
