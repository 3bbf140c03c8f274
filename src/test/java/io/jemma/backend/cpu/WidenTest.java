package io.jemma.backend.cpu;

import static io.jemma.backend.cpu.TestWeights.assertBitsEqual;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.jemma.backend.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class WidenTest {

    /** All 65536 half-precision bit patterns, little-endian. */
    private static MemorySegment allHalves() {
        MemorySegment halves = Arena.ofAuto().allocate(2 * 65536, 64);
        for (int i = 0; i < 65536; i++) {
            halves.set(Widen.SHORT_LE, 2L * i, (short) i);
        }
        return halves;
    }

    @Test
    void everyHalfBitPatternWidensExactly() {
        MemorySegment halves = allHalves();
        for (DType dtype : new DType[] {DType.BF16, DType.F16}) {
            // Whole row: all groups on the vector path. Then short pieces: the scalar tail.
            float[] widened = new float[65536];
            Widen.widen(halves, 0, dtype, 65536, widened, 0);
            for (int k = 0; k < 65536; k++) {
                float want = Widen.scalar(halves, 2L * k, dtype);
                assertBitsEqual(want, widened[Widen.pairSplitPosition(k, 65536)], dtype + " bits " + k);
            }
            float[] piece = new float[Widen.GROUP + 5];
            Widen.widen(halves, 2 * 1000, dtype, piece.length, piece, 0);
            for (int k = 0; k < piece.length; k++) {
                float want = Widen.scalar(halves, 2L * (1000 + k), dtype);
                assertBitsEqual(want, piece[Widen.pairSplitPosition(k, piece.length)], dtype + " tail " + k);
            }
        }
    }

    @Test
    void scalarWideningMatchesTheJdkAndDType() {
        MemorySegment halves = allHalves();
        for (int i = 0; i < 65536; i++) {
            assertBitsEqual(Float.float16ToFloat((short) i), Widen.scalar(halves, 2L * i, DType.F16), "f16 " + i);
            assertBitsEqual(DType.bf16ToFloat((short) i), Widen.scalar(halves, 2L * i, DType.BF16), "bf16 " + i);
        }
    }

    @Test
    void pairSplitIsAPermutationMatchingTheActivationCopy() {
        for (int n : new int[] {1, 7, Widen.GROUP, Widen.GROUP + 1, 3 * Widen.GROUP - 1, 5 * Widen.GROUP}) {
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                x[i] = i;
            }
            float[] split = new float[n + 2];
            Widen.pairSplit(x, 0, split, 2, n);
            Set<Integer> seen = new HashSet<>();
            for (int k = 0; k < n; k++) {
                int at = Widen.pairSplitPosition(k, n);
                seen.add(at);
                assertEquals(k, split[2 + at], "n=" + n + " k=" + k);
            }
            assertEquals(n, seen.size());
        }
    }

    @Test
    void f32WideningIsACopy() {
        MemorySegment data = Arena.ofAuto().allocate(4 * 37 + 1).asSlice(1);
        for (int i = 0; i < 37; i++) {
            data.set(Widen.FLOAT_LE, 4L * i, i * 0.25f - 3);
        }
        float[] out = new float[37];
        Widen.widen(data, 0, DType.F32, 37, out, 0);
        for (int i = 0; i < 37; i++) {
            assertEquals(i * 0.25f - 3, out[i]);
        }
    }
}
