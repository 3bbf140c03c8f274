package io.jemma.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

/** Random weights written little-endian into native memory, as a checkpoint would hold them, and a reference. */
final class TestWeights {

    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** The tensor, and its values as stored (rounded to the dtype), row-major. */
    record Weights(HostTensor tensor, float[] values) {
    }

    private TestWeights() {
    }

    /** Weights of the given shape with values ~ U(-1, 1), stored {@code misalign} bytes past an aligned address. */
    static Weights random(Random random, DType dtype, long[] shape, int misalign) {
        long numel = 1;
        for (long d : shape) {
            numel *= d;
        }
        float[] values = new float[Math.toIntExact(numel)];
        for (int i = 0; i < values.length; i++) {
            values[i] = dtype.round(random.nextFloat() * 2 - 1);
        }
        return of(dtype, shape, values, misalign);
    }

    static Weights of(DType dtype, long[] shape, float[] values, int misalign) {
        long bytes = (long) values.length * dtype.bytes();
        MemorySegment data = Arena.ofAuto().allocate(bytes + misalign, 64).asSlice(misalign, bytes);
        for (int i = 0; i < values.length; i++) {
            long at = (long) i * dtype.bytes();
            switch (dtype) {
                case BF16 -> data.set(SHORT_LE, at, DType.floatToBf16(values[i]));
                case F16 -> data.set(SHORT_LE, at, Float.floatToFloat16(values[i]));
                case F32 -> data.set(FLOAT_LE, at, values[i]);
            }
        }
        return new Weights(new HostTensor("w", dtype, shape, data), values);
    }

    static float[] randomActivations(Random random, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = random.nextFloat() * 2 - 1;
        }
        return x;
    }

    /**
     * Checks {@code actual[t * outDim + o]} against the double-precision {@code x @ W[rowFrom:rowTo]^T}. The
     * tolerance is 1e-5 of the output scale: the largest |reference| or, where cancellation makes all outputs
     * small, the typical magnitude of a sum of n random terms, sum|x_i w_i| / sqrt(n).
     */
    static void assertMatmul(float[] x, int tokens, int inDim, float[] w, int rowFrom, int rowTo, float[] actual,
                             int yOffset, int yStride, String what) {
        int rows = rowTo - rowFrom;
        double[] ref = new double[tokens * rows];
        double scale = Double.MIN_NORMAL;
        for (int t = 0; t < tokens; t++) {
            for (int o = 0; o < rows; o++) {
                double sum = 0, abs = 0;
                for (int i = 0; i < inDim; i++) {
                    double term = (double) x[t * inDim + i] * w[(rowFrom + o) * inDim + i];
                    sum += term;
                    abs += Math.abs(term);
                }
                ref[t * rows + o] = sum;
                scale = Math.max(scale, Math.max(Math.abs(sum), abs / Math.sqrt(inDim)));
            }
        }
        double tolerance = 1e-5 * scale;
        for (int t = 0; t < tokens; t++) {
            for (int o = 0; o < rows; o++) {
                float got = actual[yOffset + t * yStride + o];
                double want = ref[t * rows + o];
                if (!(Math.abs(got - want) <= tolerance)) {
                    fail(what + ": token " + t + ", row " + (rowFrom + o) + ": got " + got + ", want " + want
                            + " (tolerance " + tolerance + ")");
                }
            }
        }
    }

    /** Bit-exact, except that any NaN matches any NaN (conversions may quiet a signalling NaN, or not). */
    static void assertBitsEqual(float want, float got, String what) {
        if (Float.isNaN(want) && Float.isNaN(got)) {
            return;
        }
        assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got), what);
    }
}
