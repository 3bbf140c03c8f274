package io.jemma.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import org.junit.jupiter.api.Test;

class VectorMathTest {

    private static final int[] LENGTHS = {0, 1, 3, 15, 16, 17, 31, 32, 33, 100, 1000, 4099};

    @Test
    void dotAndSumOfSquaresMatchDoubleReference() {
        Random random = new Random(1);
        for (int n : LENGTHS) {
            float[] a = TestWeights.randomActivations(random, n + 3);
            float[] b = TestWeights.randomActivations(random, n + 5);
            double dot = 0, squares = 0, scale = 1e-30;
            for (int i = 0; i < n; i++) {
                dot += (double) a[3 + i] * b[5 + i];
                squares += (double) a[3 + i] * a[3 + i];
                scale += Math.abs((double) a[3 + i] * b[5 + i]);
            }
            assertEquals(dot, VectorMath.dot(a, 3, b, 5, n), 1e-6 * scale, "dot " + n);
            assertEquals(squares, VectorMath.sumOfSquares(a, 3, n), 1e-6 * Math.max(squares, 1e-30), "squares " + n);
        }
        float[] v = {3, 4};
        assertEquals(25f, VectorMath.sumOfSquares(v));
        assertEquals(25f, VectorMath.dot(v, v));
    }

    @Test
    void axpyAddsScaledVector() {
        Random random = new Random(2);
        for (int n : LENGTHS) {
            float[] x = TestWeights.randomActivations(random, n + 1);
            float[] y = TestWeights.randomActivations(random, n + 2);
            float[] before = y.clone();
            VectorMath.axpy(-0.75f, x, 1, y, 2, n);
            assertEquals(before[0], y[0]);
            assertEquals(before[1], y[1]);
            for (int i = 0; i < n; i++) {
                // One rounding per element (fused) whichever path computed it.
                assertEquals(Math.fma(-0.75f, x[1 + i], before[2 + i]), y[2 + i], "axpy " + n + " at " + i);
            }
        }
        float[] y = {1, 1};
        VectorMath.axpy(2f, new float[] {1, 2}, y);
        assertEquals(3f, y[0]);
        assertEquals(5f, y[1]);
        assertThrows(IllegalArgumentException.class, () -> VectorMath.dot(new float[2], new float[3]));
    }
}
