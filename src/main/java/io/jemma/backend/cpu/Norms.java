package io.jemma.backend.cpu;

/** RMSNorm as Gemma 4 computes it: {@code x * (mean(x^2) + eps)^-0.5 * w}, in fp32, weight used as is. */
final class Norms {
    private Norms() {
    }

    /** The factor {@code (mean(x^2) + eps)^-0.5} of one run of n values. */
    static float inverseRms(float[] x, int xo, int n, float eps) {
        float meanSquare = VectorMath.sumOfSquares(x, xo, n) / n;
        return (float) (1.0 / Math.sqrt(meanSquare + eps));
    }

    /** out = norm(x) * w over n values (w null: no weight). out may be x. */
    static void rmsNorm(float[] x, int xo, float[] w, float eps, float[] out, int oo, int n) {
        float inv = inverseRms(x, xo, n, eps);
        if (w == null) {
            for (int i = 0; i < n; i++) {
                out[oo + i] = x[xo + i] * inv;
            }
        } else {
            for (int i = 0; i < n; i++) {
                out[oo + i] = x[xo + i] * inv * w[i];
            }
        }
    }
}
