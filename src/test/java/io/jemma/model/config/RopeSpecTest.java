package io.jemma.model.config;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RopeSpecTest {

    /** Within one ulp of a closed form computed in double (the fp32 pipeline rounds four times). */
    private static void near(double exact, float actual, String what) {
        float expected = (float) exact;
        assertTrue(Math.abs(expected - actual) <= Math.ulp(expected), what + ": expected " + expected + " got " + actual);
    }

    @Test
    void proportionalRopeOfTheFullLayers() {
        // Gemma 4 full layers: theta 1e6, global head dim 512, partial_rotary_factor 0.25.
        RopeSpec rope = RopeSpec.proportional(1_000_000.0, 0.25);
        float[] inv = rope.inverseFrequencies(512);
        assertEquals(256, inv.length, "head_dim / 2 frequencies");
        assertEquals(64, rope.rotatingPairs(512), "int(0.25 * 512 // 2)");
        // inv[i] = theta^(-2i / head_dim), with the global head dim (512) in the exponent, not 128.
        assertEquals(1.0f, inv[0]);
        near(Math.pow(10, -6.0 / 256), inv[1], "1e6^(-2/512)");     // 0.9474635...
        near(Math.pow(10, -0.75), inv[32], "1e6^(-64/512)");         // 10^-0.75 = 0.1778279...
        near(Math.pow(10, -6.0 * 126 / 512), inv[63], "1e6^(-126/512)");
        // Exact fp32 values, computed by hand with the fp32 steps (see RopeSpec.inverseFrequencies).
        assertEquals(0.94746351f, inv[1]);
        assertEquals(0.17782794f, inv[32]);
        assertEquals(0.033376247f, inv[63]);
        for (int i = 64; i < 256; i++) {
            assertEquals(0.0f, inv[i], "pair " + i + " does not rotate");
        }
        for (int i = 1; i < 64; i++) {
            assertTrue(inv[i] < inv[i - 1], "strictly decreasing");
        }
    }

    @Test
    void defaultRopeOfTheSlidingLayers() {
        RopeSpec rope = RopeSpec.defaultRope(10_000.0);
        float[] inv = rope.inverseFrequencies(256);
        assertEquals(128, inv.length);
        assertEquals(128, rope.rotatingPairs(256));
        assertEquals(1.0f, inv[0]);
        near(Math.pow(10_000, -2.0 / 256), inv[1], "1e4^(-2/256)");
        assertEquals(0.01f, inv[64], "1e4^(-128/256) = 1/100");
        near(Math.pow(10_000, -254.0 / 256), inv[127], "1e4^(-254/256)");
        for (int i = 0; i < 128; i++) {
            near(Math.pow(10_000, -2.0 * i / 256), inv[i], "inv[" + i + "]");
        }
    }

    @Test
    void factorDividesTheFrequencies() {
        float[] plain = RopeSpec.proportional(1e6, 0.25).inverseFrequencies(512);
        float[] scaled = new RopeSpec(RopeType.PROPORTIONAL, 1e6, 0.25, 8.0).inverseFrequencies(512);
        for (int i = 0; i < plain.length; i++) {
            assertEquals(plain[i] / 8f, scaled[i]);
        }
    }

    @Test
    void rotatingPairsFloorAsPythonDoes() {
        assertEquals(15, RopeSpec.proportional(1e6, 0.3).rotatingPairs(100), "int(30.000000000000004 // 2)");
        assertEquals(50, RopeSpec.proportional(1e6, 1.0).rotatingPairs(100));
        assertEquals(0, RopeSpec.proportional(1e6, 0.0).rotatingPairs(100));
        assertEquals(0.0f, RopeSpec.proportional(1e6, 0.0).inverseFrequencies(100)[0]);
        // 0.25 * 6 = 1.5, // 2 -> 0.0: no pair rotates.
        assertEquals(0, RopeSpec.proportional(1e6, 0.25).rotatingPairs(6));
    }

    @Test
    void refusesNonsense() {
        assertThrows(IllegalArgumentException.class, () -> RopeSpec.defaultRope(1e4).inverseFrequencies(255));
        assertThrows(IllegalArgumentException.class, () -> RopeSpec.defaultRope(1e4).inverseFrequencies(0));
        assertThrows(ConfigException.class, () -> RopeSpec.defaultRope(0));
        assertThrows(ConfigException.class, () -> RopeSpec.defaultRope(Double.NaN));
        assertThrows(ConfigException.class, () -> RopeSpec.proportional(1e6, 1.5));
        assertThrows(ConfigException.class, () -> RopeSpec.proportional(1e6, -0.1));
        assertThrows(ConfigException.class, () -> new RopeSpec(RopeType.PROPORTIONAL, 1e6, 0.25, 0));
        assertThrows(ConfigException.class, () -> new RopeSpec(null, 1e6, 0.25, 1));
    }
}
