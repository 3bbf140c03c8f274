package io.jemma.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.jemma.engine.sampling.LogitsProcessor;
import io.jemma.engine.sampling.Penalties;
import io.jemma.engine.sampling.SamplingParams;
import io.jemma.engine.sampling.SamplingRow;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The penalty list the device sampler gets per row must do what LogitsProcessor does on the host: checked
 * here (no GPU needed) by applying the list to logits in Java the way sampling.cu does.
 */
class CudaSamplerListTest {

    private static float[] applyLikeTheKernel(Map<Integer, int[]> list, float[] logits, float repetition) {
        float[] out = logits.clone();
        for (var e : list.entrySet()) {
            int t = e.getKey();
            int flags = e.getValue()[0];
            float v = out[t];
            if ((flags & 1) != 0) {
                v = v > 0 ? v / repetition : v * repetition;
            }
            if ((flags & 4) != 0) {
                v -= Float.intBitsToFloat(e.getValue()[1]);
            }
            if ((flags & 2) != 0) {
                v = Float.NEGATIVE_INFINITY;
            }
            out[t] = v;
        }
        return out;
    }

    @Test
    void theListDoesWhatTheLogitsProcessorDoes() {
        Penalties pen = new Penalties(0.7, -0.3, 1.3);
        LogitsProcessor p = new LogitsProcessor(pen, new int[] {1, 2, 2, 5});
        p.accept(2);
        p.accept(7);
        p.accept(7);
        SamplingRow row = new SamplingRow(new SamplingParams(0.8, 0, 1, 0, 3), null, p, Set.of(9, 1), -1, 3);
        float[] logits = {0.5f, -1.25f, 2f, 0.1f, 3f, -0.4f, 1f, 0.75f, -2f, 4f};
        float[] host = logits.clone();
        p.apply(host, 0, host.length, Set.of(9, 1));
        assertArrayEquals(host, applyLikeTheKernel(CudaSampler.penaltyList(row), logits, 1.3f));

        // Without penalties only the end tokens are listed.
        LogitsProcessor none = new LogitsProcessor(Penalties.NONE, new int[] {1, 2});
        none.accept(4);
        var list = CudaSampler.penaltyList(new SamplingRow(SamplingParams.GREEDY, null, none, Set.of(1), -1, 0));
        assertEquals(Set.of(1), list.keySet());
        assertEquals(2, list.get(1)[0]);
    }
}
