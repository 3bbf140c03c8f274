package io.jemma.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The host side of weight upload, without a GPU: what bytes the device receives, chunk by chunk. */
class WeightPackingTest {
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static HostTensor tensor(DType dtype, long[] shape, float[] values) {
        MemorySegment data = Arena.ofAuto().allocate((long) values.length * dtype.bytes());
        for (int i = 0; i < values.length; i++) {
            switch (dtype) {
                case BF16 -> data.set(SHORT_LE, i * 2L, DType.floatToBf16(values[i]));
                case F16 -> data.set(SHORT_LE, i * 2L, Float.floatToFloat16(values[i]));
                case F32 -> data.set(FLOAT_LE, i * 4L, values[i]);
            }
        }
        return new HostTensor("t", dtype, shape, data);
    }

    /** Runs the upload source in chunks of {@code chunk} bytes, as Transfers does with its pinned halves. */
    private static MemorySegment upload(HostTensor t, long chunk) {
        long bytes = WeightPacking.deviceBytes(t);
        MemorySegment device = Arena.ofAuto().allocate(bytes);
        Transfers.Source source = WeightPacking.source(t);
        for (long off = 0; off < bytes; off += chunk) {
            source.fill(off, device.asSlice(off, Math.min(chunk, bytes - off)));
        }
        return device;
    }

    private static float[] values(int n) {
        SplittableRandom r = new SplittableRandom(7);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((r.nextDouble() * 2 - 1) * Math.pow(10, r.nextInt(7) - 3));
        }
        v[0] = Float.NaN;
        v[1] = Float.POSITIVE_INFINITY;
        v[2] = -0.0f;
        v[3] = 1.00390625f;          // exactly between two bf16 values: rounds to even (1.0)
        v[4] = 1.01171875f;          // between 1.0078125 and 1.015625: rounds to even (1.015625)
        return v;
    }

    @Test
    void matricesBecomeBf16RoundedToNearestEven() {
        float[] v = values(3001);
        for (DType dtype : DType.values()) {
            HostTensor t = tensor(dtype, new long[] {3001, 1}, v);
            MemorySegment device = upload(t, 1000);    // chunks end mid-tensor
            assertEquals(3001 * 2, device.byteSize());
            for (int i = 0; i < v.length; i++) {
                short want = DType.floatToBf16(dtype.round(v[i]));
                short got = device.get(SHORT_LE, i * 2L);
                if (Float.isNaN(v[i])) {
                    assertEquals(true, Float.isNaN(DType.bf16ToFloat(got)), dtype + " NaN stays NaN");
                } else {
                    assertEquals(want, got, dtype + " element " + i + " (" + v[i] + ")");
                }
            }
        }
        assertEquals(DType.floatToBf16(1.0f), DType.floatToBf16(1.00390625f));
        assertEquals(DType.floatToBf16(1.015625f), DType.floatToBf16(1.01171875f));
    }

    @Test
    void vectorsBecomeFp32() {
        float[] v = values(777);
        for (DType dtype : DType.values()) {
            MemorySegment device = upload(tensor(dtype, new long[] {777}, v), 64);
            assertEquals(777 * 4, device.byteSize());
            for (int i = 0; i < v.length; i++) {
                float want = dtype.round(v[i]);
                float got = device.get(FLOAT_LE, i * 4L);
                assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(got), dtype + " element " + i);
            }
        }
    }
}
