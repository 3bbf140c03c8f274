package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.GpuTests.gpu;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.jemma.backend.DType;
import io.jemma.backend.DummyWeights;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Dummy weights generated on the device (dummy.cu) are the CPU generator's bits: every element of small
 * tensors, and thousands of random elements (the first and last included) of a real 31B-sized one.
 */
@Tag("gpu")
class DummyWeightsGpuTest {
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static MemorySegment download(CudaWeight w) {
        MemorySegment host = Arena.ofAuto().allocate(w.buffer().bytes(), 64);
        gpu().read(w.buffer(), host);
        return host;
    }

    private static void check(String name, long[] shape, DType dtype, long seed, long[] indices) {
        CudaWeight w = CudaWeight.of(gpu().dummyWeight(name, shape, dtype, seed));
        MemorySegment host = download(w);
        int bad = 0;
        String first = "";
        for (long i : indices) {
            float expected = DummyWeights.element(seed, name, shape, i, dtype);
            float actual = shape.length <= 1 ? host.get(FLOAT_LE, i * 4)
                    : DType.bf16ToFloat(host.get(SHORT_LE, i * 2));
            // On the device matrices are bf16 whatever the config's dtype (f32 and f16 rounded on the way).
            float want = shape.length <= 1 ? expected : DType.BF16.round(expected);
            if (Float.floatToRawIntBits(want) != Float.floatToRawIntBits(actual)) {
                if (bad++ == 0) {
                    first = "element " + i + ": device " + actual + ", host " + want;
                }
            }
        }
        GpuReport.check("dummy", name + " " + java.util.Arrays.toString(shape) + " " + dtype, bad, 0, bad == 0);
        assertEquals(0, bad, name + ": " + bad + " of " + indices.length + " elements differ; " + first);
    }

    private static long[] all(long n) {
        long[] out = new long[(int) n];
        for (int i = 0; i < n; i++) {
            out[i] = i;
        }
        return out;
    }

    @Test
    void deviceGeneratorMatchesTheHostBitForBit() {
        check("model.language_model.layers.0.self_attn.q_proj.weight", new long[] {128, 64}, DType.BF16, 7, all(128 * 64));
        check("model.layers.3.mlp.down_proj.weight", new long[] {96, 100}, DType.BF16, 0, all(9600));   // odd tail
        check("model.layers.3.mlp.up_proj.weight", new long[] {33, 40}, DType.F16, 5, all(33 * 40));
        check("model.layers.3.mlp.gate_proj.weight", new long[] {16, 24}, DType.F32, 5, all(16 * 24));
        check("model.norm.weight", new long[] {5376}, DType.BF16, 0, all(5376));
        long[] q = {8192, 5376};
        long n = q[0] * q[1];
        SplittableRandom r = GpuTests.random("dummy");
        long[] picks = new long[4096];
        for (int i = 0; i < picks.length; i++) {
            picks[i] = r.nextLong(n);
        }
        picks[0] = 0;
        picks[1] = n - 1;
        check("model.layers.0.self_attn.q_proj.weight", q, DType.BF16, 0, picks);
    }
}
