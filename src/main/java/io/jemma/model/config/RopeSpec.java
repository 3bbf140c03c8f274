package io.jemma.model.config;

/**
 * The rotary position embedding of one layer type (an entry of {@code rope_parameters}).
 *
 * @param type                default or proportional
 * @param theta               {@code rope_theta}, the base wavelength
 * @param partialRotaryFactor fraction of frequency pairs that rotate (proportional only; 1 for default,
 *                            whose transformers implementation ignores the key)
 * @param factor              divides every inverse frequency (proportional only; 1 for default)
 */
public record RopeSpec(RopeType type, double theta, double partialRotaryFactor, double factor) {

    public RopeSpec {
        if (type == null) {
            throw new ConfigException("rope_type is missing");
        }
        if (!(theta > 0) || Double.isInfinite(theta)) {
            throw new ConfigException("rope_theta must be a positive number, got " + theta);
        }
        // More than 1 would ask for more rotating pairs than the head has; transformers would then return
        // an inv_freq longer than head_dim / 2 and fail later in a shape mismatch.
        if (!(partialRotaryFactor >= 0 && partialRotaryFactor <= 1)) {
            throw new ConfigException("partial_rotary_factor must be in [0, 1], got " + partialRotaryFactor);
        }
        if (!(factor > 0) || Double.isInfinite(factor)) {
            throw new ConfigException("rope factor must be a positive number, got " + factor);
        }
    }

    public static RopeSpec defaultRope(double theta) {
        return new RopeSpec(RopeType.DEFAULT, theta, 1.0, 1.0);
    }

    public static RopeSpec proportional(double theta, double partialRotaryFactor) {
        return new RopeSpec(RopeType.PROPORTIONAL, theta, partialRotaryFactor, 1.0);
    }

    /** How many frequency pairs rotate; the remaining {@code headDim / 2 - rotatingPairs} have frequency 0. */
    public int rotatingPairs(int headDim) {
        checkHeadDim(headDim);
        return switch (type) {
            case DEFAULT -> headDim / 2;
            // transformers: int(partial_rotary_factor * head_dim // 2), a floor in double precision.
            case PROPORTIONAL -> (int) Math.floor(partialRotaryFactor * headDim / 2.0);
        };
    }

    /**
     * The {@code headDim / 2} inverse frequencies of a layer whose heads have {@code headDim} dimensions (for
     * Gemma 4 the layer's own head dim: 256 for sliding layers, {@code global_head_dim} for full layers, as
     * transformers 5.17 resolves it per layer type). Frequency pair {@code i} rotates dimensions {@code i}
     * and {@code i + headDim / 2} (the rotate_half layout).
     *
     * <p>Bit-for-bit what transformers computes in fp32: {@code 1.0 / (theta ** (arange(0, 2k, 2).float() /
     * head_dim))}, step by step in its precision: the exponent is an fp32 division; the power is an fp32
     * pow of the fp32-rounded base, done here as Math.pow in double rounded once to float (the correctly
     * rounded fp32 power); the reciprocal and the division by {@code factor} are fp32 operations. Computing
     * it all in double and rounding at the end would differ in the last bit for many entries.
     *
     * <p>One caveat, measured against transformers 5.17 / torch 2.11 on an x86 host: torch's CPU pow is
     * SLEEF's vectorized powf (error up to 1 ulp, not correctly rounded), so for the released configs 2 of
     * the 192 distinct values differ from these by one ulp (sliding index 111, full index 29). That is a
     * relative error of 6e-8 in a rotation angle, far below bf16 resolution; matching it bit for bit would
     * mean reimplementing SLEEF for one CPU instruction set.
     */
    public float[] inverseFrequencies(int headDim) {
        int pairs = rotatingPairs(headDim);
        float[] inv = new float[headDim / 2];
        float base = (float) theta;          // torch casts the Python float base to the tensor's fp32
        float divisor = (float) factor;      // likewise for `inv_freq /= factor`
        for (int i = 0; i < pairs; i++) {
            float exponent = (float) (2 * i) / (float) headDim;
            float power = (float) Math.pow(base, exponent);
            inv[i] = 1.0f / power;
            if (type == RopeType.PROPORTIONAL) {
                inv[i] = inv[i] / divisor;
            }
        }
        return inv; // pairs beyond `pairs` stay 0: they do not rotate (the "nope" part of proportional RoPE)
    }

    private static void checkHeadDim(int headDim) {
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("RoPE needs a positive even head dim, got " + headDim);
        }
    }
}
