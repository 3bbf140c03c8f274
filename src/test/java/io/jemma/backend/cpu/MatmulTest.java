package io.jemma.backend.cpu;

import static io.jemma.backend.cpu.TestWeights.assertMatmul;
import static io.jemma.backend.cpu.TestWeights.randomActivations;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Matmul against a double-precision reference on the same (dtype-rounded) weights. */
class MatmulTest {

    // Three threads on any machine: more workers than the 2-core CI box has, to shake out task splitting.
    private static Matmul parallel;
    private static Matmul single;

    @BeforeAll
    static void start() {
        parallel = new Matmul(3);
        single = new Matmul(1);
    }

    @AfterAll
    static void stop() {
        parallel.close();
        single.close();
    }

    /** Runs one full matmul on both instances and checks both. */
    private static void check(Random random, DType dtype, int tokens, int inDim, int outDim, int misalign) {
        TestWeights.Weights w = TestWeights.random(random, dtype, new long[] {outDim, inDim}, misalign);
        float[] x = randomActivations(random, tokens * inDim);
        for (Matmul m : new Matmul[] {single, parallel}) {
            float[] y = new float[tokens * outDim];
            Arrays.fill(y, Float.NaN);
            m.matmul(x, tokens, inDim, w.tensor(), y);
            assertMatmul(x, tokens, inDim, w.values(), 0, outDim, y, 0, outDim,
                    dtype + " tokens=" + tokens + " in=" + inDim + " out=" + outDim + " threads=" + m.threads());
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void tinyAndOddShapes(DType dtype) {
        Random random = new Random(1);
        // Tails of every kind: below one vector, one element past a vector / a pair-split group, and 1 x 1.
        int[] inDims = {1, 2, 3, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 257};
        int[] outDims = {1, 2, 3, 4, 5, 6, 7, 11, 13};
        int[] tokenCounts = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33};
        for (int inDim : inDims) {
            for (int outDim : outDims) {
                for (int tokens : tokenCounts) {
                    check(random, dtype, tokens, inDim, outDim, 0);
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void decodeShapes(DType dtype) {
        Random random = new Random(2);
        for (int tokens = 1; tokens <= 9; tokens++) {
            check(random, dtype, tokens, 1000, 301, 0);   // parallel, row tail of 1
            check(random, dtype, tokens, 2048, 128, 0);   // whole groups only
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void prefillShapes(DType dtype) {
        Random random = new Random(3);
        check(random, dtype, 64, 512, 96, 0);       // one wide tile, whole 6-row tiles
        check(random, dtype, 128, 300, 100, 0);     // depth not a panel multiple, row tail of 4
        check(random, dtype, 80, 700, 61, 0);       // wide + narrow tiles, three depth blocks
        check(random, dtype, 100, 33, 17, 0);       // padded tokens
        check(random, dtype, 513, 64, 40, 0);       // two token chunks
    }

    @Test
    void longRowsUseShortTokenChunks() {
        Random random = new Random(4);
        int inDim = 70_001;  // > 4M / 64: chunks of 64 tokens, 274 depth blocks, odd tail
        assertEquals(PrefillKernels.WIDE, Prefill.chunkTokens(inDim));
        check(random, DType.BF16, 100, inDim, 7, 0);
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void unalignedWeights(DType dtype) {
        Random random = new Random(5);
        for (int misalign : new int[] {1, 2, 6}) {
            check(random, dtype, 3, 200, 9, misalign);
            check(random, dtype, 40, 200, 9, misalign);
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void rowRangesWriteOnlyTheirRows(DType dtype) {
        Random random = new Random(6);
        int inDim = 130, outDim = 50;
        TestWeights.Weights w = TestWeights.random(random, dtype, new long[] {outDim, inDim}, 0);
        for (int tokens : new int[] {1, 5, 20}) {
            float[] x = randomActivations(random, tokens * inDim);
            int from = 7, to = 38, stride = 45, offset = 3;
            float[] y = new float[offset + tokens * stride + 5];
            Arrays.fill(y, Float.NaN);
            parallel.matmulRows(x, 0, tokens, inDim, w.tensor(), from, to, y, offset, stride);
            assertMatmul(x, tokens, inDim, w.values(), from, to, y, offset, stride, dtype + " rows " + tokens);
            for (int i = 0; i < y.length; i++) {
                int rel = i - offset;
                boolean written = rel >= 0 && rel / stride < tokens && rel % stride < to - from;
                if (!written) {
                    assertTrue(Float.isNaN(y[i]), "element " + i + " written");
                }
            }
            float[] dense = new float[tokens * (to - from)];
            single.matmulRows(x, tokens, inDim, w.tensor(), from, to, dense);
            assertMatmul(x, tokens, inDim, w.values(), from, to, dense, 0, to - from, dtype + " dense rows");
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void expertSlicesOfAThreeDimensionalTensor(DType dtype) {
        Random random = new Random(7);
        int experts = 4, outDim = 24, inDim = 96;
        TestWeights.Weights all = TestWeights.random(random, dtype, new long[] {experts, outDim, inDim}, 0);
        for (int tokens : new int[] {1, 4, 32}) {
            float[] x = randomActivations(random, tokens * inDim);
            for (int e = 0; e < experts; e++) {
                HostTensor expert = all.tensor().slice(e, 1);  // [1, outDim, inDim]
                float[] y = new float[tokens * outDim];
                parallel.matmul(x, tokens, inDim, expert, y);
                float[] values = Arrays.copyOfRange(all.values(), e * outDim * inDim, (e + 1) * outDim * inDim);
                assertMatmul(x, tokens, inDim, values, 0, outDim, y, 0, outDim, dtype + " expert " + e);
            }
        }
    }

    @Test
    void offsetsIntoActivationsAndOutput() {
        Random random = new Random(8);
        int inDim = 70, outDim = 30;
        TestWeights.Weights w = TestWeights.random(random, DType.BF16, new long[] {outDim, inDim}, 0);
        for (int tokens : new int[] {2, 17}) {
            float[] x = randomActivations(random, 11 + tokens * inDim);
            float[] y = new float[5 + tokens * outDim];
            parallel.matmul(x, 11, tokens, inDim, w.tensor(), y, 5);
            float[] xs = Arrays.copyOfRange(x, 11, x.length);
            assertMatmul(xs, tokens, inDim, w.values(), 0, outDim, y, 5, outDim, "offsets " + tokens);
        }
    }

    @Test
    void randomShapes() {
        Random random = new Random(9);
        DType[] dtypes = DType.values();
        for (int i = 0; i < 60; i++) {
            DType dtype = dtypes[random.nextInt(dtypes.length)];
            int tokens = 1 + random.nextInt(random.nextBoolean() ? 12 : 200);
            check(random, dtype, tokens, 1 + random.nextInt(600), 1 + random.nextInt(150), random.nextInt(4));
        }
    }

    @Test
    void specialWeightValuesPropagate() {
        // Inf and NaN weights must come out as IEEE says, not be lost in widening or tiling.
        int inDim = 40, outDim = 8;
        for (DType dtype : DType.values()) {
            for (int tokens : new int[] {1, 20}) {
                float[] values = new float[outDim * inDim];
                Arrays.fill(values, 0.5f);
                values[2 * inDim + 3] = Float.POSITIVE_INFINITY;
                values[5 * inDim + 39] = Float.NaN;
                TestWeights.Weights w = TestWeights.of(dtype, new long[] {outDim, inDim}, values, 0);
                float[] x = new float[tokens * inDim];
                Arrays.fill(x, 1f);
                float[] y = new float[tokens * outDim];
                parallel.matmul(x, tokens, inDim, w.tensor(), y);
                for (int t = 0; t < tokens; t++) {
                    assertEquals(Float.POSITIVE_INFINITY, y[t * outDim + 2], dtype + " inf");
                    assertTrue(Float.isNaN(y[t * outDim + 5]), dtype + " nan");
                    assertEquals(20f, y[t * outDim], dtype + " finite");
                }
            }
        }
    }

    @Test
    void rejectsMismatchedArguments() {
        TestWeights.Weights w = TestWeights.random(new Random(10), DType.F32, new long[] {4, 8}, 0);
        float[] x = new float[16];
        assertThrows(IllegalArgumentException.class, () -> parallel.matmul(x, 2, 7, w.tensor(), new float[8]));
        assertThrows(IllegalArgumentException.class, () -> parallel.matmul(x, 3, 8, w.tensor(), new float[12]));
        assertThrows(IllegalArgumentException.class, () -> parallel.matmul(x, 2, 8, w.tensor(), new float[7]));
        assertThrows(IllegalArgumentException.class,
                () -> parallel.matmulRows(x, 2, 8, w.tensor(), 3, 5, new float[4]));
        float[] y = new float[8];
        parallel.matmul(x, 0, 8, w.tensor(), y);  // no tokens: nothing to do
        assertEquals(0f, y[0]);
    }
}
