package io.jemma.backend.cpu;

import static io.jemma.backend.cpu.Widen.F;
import static io.jemma.backend.cpu.Widen.L;
import static jdk.incubator.vector.VectorOperators.ADD;

import jdk.incubator.vector.FloatVector;

/** Small fp32 vector operations of the CPU backend (attention dots, residual updates, norms). */
public final class VectorMath {

    private VectorMath() {
    }

    /** {@code sum_i a[aOff + i] * b[bOff + i]} for i in [0, n). */
    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        // Two accumulators: one FMA chain would wait on the FMA latency at every step.
        FloatVector c = FloatVector.zero(F), d = c;
        int i = 0;
        for (; i + 2 * L <= n; i += 2 * L) {
            c = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), c);
            d = FloatVector.fromArray(F, a, aOff + i + L).fma(FloatVector.fromArray(F, b, bOff + i + L), d);
        }
        for (; i + L <= n; i += L) {
            c = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), c);
        }
        float sum = c.add(d).reduceLanes(ADD);
        for (; i < n; i++) {
            sum += a[aOff + i] * b[bOff + i];
        }
        return sum;
    }

    public static float dot(float[] a, float[] b) {
        checkSameLength(a, b);
        return dot(a, 0, b, 0, a.length);
    }

    /** {@code y[yOff + i] += alpha * x[xOff + i]} for i in [0, n). */
    public static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        FloatVector a = FloatVector.broadcast(F, alpha);
        int i = 0;
        for (; i + L <= n; i += L) {
            FloatVector.fromArray(F, x, xOff + i).fma(a, FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] = Math.fma(alpha, x[xOff + i], y[yOff + i]);
        }
    }

    public static void axpy(float alpha, float[] x, float[] y) {
        checkSameLength(x, y);
        axpy(alpha, x, 0, y, 0, x.length);
    }

    /** {@code sum_i x[off + i]^2} for i in [0, n), e.g. for RMSNorm. */
    public static float sumOfSquares(float[] x, int off, int n) {
        return dot(x, off, x, off, n);
    }

    public static float sumOfSquares(float[] x) {
        return sumOfSquares(x, 0, x.length);
    }

    /** {@code y[yOff + i] += x[xOff + i]} for i in [0, n): residual adds. */
    public static void add(float[] y, int yOff, float[] x, int xOff, int n) {
        int i = 0;
        for (; i + L <= n; i += L) {
            FloatVector.fromArray(F, y, yOff + i).add(FloatVector.fromArray(F, x, xOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] += x[xOff + i];
        }
    }

    /** {@code y[yOff + i] *= s} for i in [0, n). */
    public static void scale(float[] y, int yOff, int n, float s) {
        int i = 0;
        for (; i + L <= n; i += L) {
            FloatVector.fromArray(F, y, yOff + i).mul(s).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] *= s;
        }
    }

    private static void checkSameLength(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("lengths differ: " + a.length + " vs " + b.length);
        }
    }
}
