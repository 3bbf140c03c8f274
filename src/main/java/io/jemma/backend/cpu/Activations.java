package io.jemma.backend.cpu;

/** Elementwise activations. */
final class Activations {
    private static final double SQRT_2_OVER_PI = Math.sqrt(2.0 / Math.PI);

    private Activations() {
    }

    /** gelu with the tanh approximation (PyTorch's gelu(approximate="tanh"), Gemma's hidden_activation). */
    static float geluTanh(float x) {
        double inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
        return (float) (0.5 * x * (1.0 + Math.tanh(inner)));
    }

    /** {@code out = gelu_tanh(gate) * up} over n values; out may alias either input. */
    static void geluTanhMul(float[] gate, int go, float[] up, int uo, float[] out, int oo, int n) {
        for (int i = 0; i < n; i++) {
            out[oo + i] = geluTanh(gate[go + i]) * up[uo + i];
        }
    }
}
