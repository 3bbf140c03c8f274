package io.jemma.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * Pins the dummy-weight formula (/work/helpers/DUMMY.md) to values computed by an independent Python
 * implementation of the same spec (fp32 rounding through struct, bf16 round-to-nearest-even): if the
 * Java, CUDA or torch generators drift, these fail.
 */
class DummyWeightsTest {

    private static int bits(float f) {
        return Float.floatToRawIntBits(f);
    }

    @Test
    void hashesMatchTheSpec() {
        assertEquals(0x1af1383b, DummyWeights.fnv1a32(
                "model.layers.0.self_attn.q_proj.weight".getBytes(StandardCharsets.UTF_8)));
        assertEquals(0xdcb1547c, DummyWeights.key(0, "model.layers.0.self_attn.q_proj.weight"));
        assertEquals(0xbe824eab, DummyWeights.key(0, "model.embed_tokens.weight"));
        assertEquals(0xb7ee83f8, DummyWeights.key(7, "model.language_model.layers.0.self_attn.q_proj.weight"));
        assertEquals(0x811c9dc5, DummyWeights.fnv1a32(new byte[0]));
        assertEquals(0, DummyWeights.fmix32(0));
    }

    @Test
    void elementsMatchTheIndependentReference() {
        long[] q = {8192, 5376};
        String qName = "model.layers.0.self_attn.q_proj.weight";
        int key = DummyWeights.key(0, qName);
        float range = DummyWeights.range(q);
        assertEquals(0xbc0a209d, bits(DummyWeights.value(key, 0, range)));
        assertEquals(0xbc1cfc77, bits(DummyWeights.value(key, 1, range)));
        assertEquals(0x3bc76367, bits(DummyWeights.value(key, 12345, range)));
        assertEquals(0x3b97dd89, bits(DummyWeights.value(key, 8192L * 5376 - 1, range)));

        long[] embed = {262144, 5376};
        int ek = DummyWeights.key(0, "model.embed_tokens.weight");
        // An index above 2^31: the multiply by the golden ratio constant wraps as uint32.
        assertEquals(0x3a2e586f, bits(DummyWeights.value(ek, 1409286143L, DummyWeights.range(embed))));
        assertEquals(0x3b4fb795, bits(DummyWeights.value(ek, 7, DummyWeights.range(embed))));

        long[] down = {5376, 21504};
        assertEquals(0xbb8d83de, bits(DummyWeights.value(DummyWeights.key(0, "model.layers.5.mlp.down_proj.weight"),
                100_000_000L, DummyWeights.range(down))));

        // Stored as bf16 (nearest even).
        String small = "model.language_model.layers.0.self_attn.q_proj.weight";
        long[] smallShape = {128, 64};
        assertEquals(0xbdff, DType.floatToBf16(DummyWeights.value(DummyWeights.key(7, small), 0,
                DummyWeights.range(smallShape))) & 0xffff);
        assertEquals(DType.bf16ToFloat((short) 0xbdcc), DummyWeights.element(7, small, smallShape, 8191, DType.BF16));
    }

    @Test
    void vectorsAreOnesAndValuesStayInRange() {
        assertEquals(1f, DummyWeights.element(3, "model.norm.weight", new long[] {5376}, 17, DType.BF16));
        HostTensor t = DummyWeights.host("model.layers.0.mlp.up_proj.weight", new long[] {64, 96}, DType.BF16, 5);
        float range = DummyWeights.range(new long[] {64, 96});
        double sum = 0;
        for (int i = 0; i < t.numel(); i++) {
            float x = t.getFloat(i);
            assertTrue(Math.abs(x) <= range * 1.004f, "element " + i + " = " + x);
            assertEquals(DummyWeights.element(5, "model.layers.0.mlp.up_proj.weight", t.shape(), i, DType.BF16), x);
            sum += x;
        }
        assertTrue(Math.abs(sum / t.numel()) < 0.1 * range, "mean " + sum / t.numel());
        HostTensor norm = DummyWeights.host("model.norm.weight", new long[] {8}, DType.F32, 0);
        for (int i = 0; i < 8; i++) {
            assertEquals(1f, norm.getFloat(i));
        }
        assertThrows(IllegalArgumentException.class, () -> DummyWeights.check("huge", 1L << 32));
    }
}
