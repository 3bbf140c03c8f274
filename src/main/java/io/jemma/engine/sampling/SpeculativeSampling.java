package io.jemma.engine.sampling;

/**
 * Speculative (rejection) sampling: deciding, at one position, between draft tokens and the target's own
 * choice so that the token that comes out is distributed exactly as the target's distribution p, whatever the
 * draft proposed. Distributions are those {@link Sampler#distribution} gives (temperature, top-k, top-p and
 * min-p applied, renormalized); the random draws come from the request's own stream.
 */
public final class SpeculativeSampling {

    private SpeculativeSampling() {
    }

    /**
     * What came out of one position.
     *
     * @param token     the token to emit
     * @param candidate the index of the accepted draft candidate, or -1 when the token was drawn from the target
     *                  (a rejection, or no candidates)
     */
    public record Result(int token, int candidate) {
        public boolean accepted() {
            return candidate >= 0;
        }
    }

    /**
     * One draft token {@code draft} that was drawn from q (Leviathan et al. 2023, Chen et al. 2023): kept with
     * probability {@code min(1, p(draft) / q(draft))}, else replaced by a draw from {@code max(0, p - q)},
     * renormalized.
     */
    public static Result sampled(float[] p, float[] q, int draft, Sampler random) {
        double pd = p[draft];
        double qd = q[draft];
        double u = random.uniform();
        if (pd > 0 && (qd <= 0 || u * qd < pd)) {
            return new Result(draft, 0);
        }
        float[] residual = new float[p.length];
        double total = 0;
        for (int i = 0; i < p.length; i++) {
            residual[i] = Math.max(0f, p[i] - q[i]);
            total += residual[i];
        }
        // p == q up to rounding leaves nothing; the draw is then p itself.
        return new Result(random.draw(total > 0 ? residual : p), -1);
    }

    /**
     * Draft candidates that were chosen, not drawn (the top-k children of a tree node): each is tried in order
     * and kept with its probability under p with the earlier rejected candidates removed (renormalized); when
     * all are rejected, the token is drawn from what remains. The output is distributed as p, for any choice of
     * candidates (sglang's target-only tree verification).
     */
    public static Result candidates(float[] p, int[] candidates, Sampler random) {
        float[] rest = p.clone();
        double mass = 0;
        for (float x : rest) {
            mass += x;
        }
        for (int c = 0; c < candidates.length; c++) {
            int token = candidates[c];
            double pc = rest[token];
            if (pc > 0 && random.uniform() * mass < pc) {
                return new Result(token, c);
            }
            mass -= pc;
            rest[token] = 0;
        }
        if (!(mass > 0)) {
            // The candidates held all of p's mass and were all rejected: only rounding gets here.
            return new Result(random.draw(p), -1);
        }
        return new Result(random.draw(rest), -1);
    }
}
