package io.jemma.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.model.config.BundledConfigs;
import io.jemma.model.config.TextConfig;
import org.junit.jupiter.api.Test;

/** The GPU memory split (sglang's mem-fraction-static) and its start-up errors, without a GPU. */
class DeviceMemoryPlanTest {
    private static final long GIB = 1L << 30;
    private static final TextConfig GEMMA_31B = BundledConfigs.load(BundledConfigs.GEMMA_4_31B);

    @Test
    void the31bWeightsAreAbout61GB() {
        long bytes = DeviceMemoryPlan.weightBytes(GEMMA_31B);
        // 30.7 B parameters in bf16 (the norms are fp32 on the device, a rounding error here).
        assertTrue(bytes > 60e9 && bytes < 63e9, "31B weights " + bytes);
    }

    @Test
    void kvGetsWhatTheStaticFractionLeavesAfterTheWeights() {
        long total = 140 * GIB;
        DeviceMemoryPlan p = DeviceMemoryPlan.of("H200", total, 139 * GIB, GEMMA_31B, 0.85, null, 256, 32);
        assertEquals((long) (0.85 * total) - DeviceMemoryPlan.weightBytes(GEMMA_31B), p.kvBytes());
        assertTrue(p.activationBytes() > DeviceMemoryPlan.FIXED_OVERHEAD);
        p.checkFree(p.kvBytes());
        // jemma.kv-memory-bytes wins over the fraction.
        assertEquals(10 * GIB, DeviceMemoryPlan.of("H200", total, total, GEMMA_31B, 0.85, 10 * GIB, 256, 32).kvBytes());
    }

    @Test
    void weightsOverTheStaticFractionAreAStartupErrorWithTheNumbers() {
        var e = assertThrows(IllegalStateException.class,
                () -> DeviceMemoryPlan.of("NVIDIA L4", 24 * GIB, 23 * GIB, GEMMA_31B, 0.85, null, 256, 32));
        assertTrue(e.getMessage().contains("mem-fraction-static=0.85") && e.getMessage().contains("20.4 GiB")
                && e.getMessage().contains("NVIDIA L4"), e.getMessage());
    }

    @Test
    void tooLittleFreeMemoryIsAStartupErrorSayingHowMuchIsNeededAndFree() {
        DeviceMemoryPlan p = DeviceMemoryPlan.of("H200", 140 * GIB, 70 * GIB, GEMMA_31B, 0.85, null, 256, 32);
        var e = assertThrows(IllegalStateException.class, () -> p.checkFree(p.kvBytes()));
        assertTrue(e.getMessage().contains("70.0 GiB of 140.0 GiB are free") && e.getMessage().contains("needs"),
                e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> DeviceMemoryPlan.of("H200", 140 * GIB, 70 * GIB, GEMMA_31B, 1.5, null, 256, 32));
    }

    @Test
    void bundledConfigNamesAreModelPaths() {
        assertEquals("gemma-4-31b", InferenceEngine.bundledConfig("31b"));
        assertEquals("gemma-4-26b-a4b", InferenceEngine.bundledConfig("gemma-4-26b-a4b"));
        assertEquals("gemma-4-e2b", InferenceEngine.bundledConfig("e2b"));
        assertEquals(null, InferenceEngine.bundledConfig("/models/gemma-4-31b-it"));
    }
}
