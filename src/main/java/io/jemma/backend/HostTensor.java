package io.jemma.backend;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A tensor in host memory, usually a read-only slice of a memory-mapped checkpoint file. Row-major,
 * little-endian. Backends take weights in this form: the CPU backend computes on it directly, the CUDA
 * backend copies it to the device.
 *
 * @param name  the checkpoint name, for error messages
 * @param dtype element type
 * @param shape dimensions, outermost first
 * @param data  exactly {@code numel * dtype.bytes()} bytes
 */
public record HostTensor(String name, DType dtype, long[] shape, MemorySegment data) {

    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public HostTensor {
        shape = shape.clone();
        long expected = numel(shape) * dtype.bytes();
        if (data.byteSize() != expected) {
            throw new IllegalArgumentException("tensor " + name + ": " + data.byteSize() + " bytes for shape "
                    + Arrays.toString(shape) + " of " + dtype + " (expected " + expected + ")");
        }
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long dim(int i) {
        return shape[i];
    }

    public long numel() {
        return numel(shape);
    }

    /** Element {@code index} (flat, row-major) widened to fp32. */
    public float getFloat(long index) {
        return switch (dtype) {
            case F32 -> data.get(FLOAT_LE, index * 4);
            case BF16 -> DType.bf16ToFloat(data.get(SHORT_LE, index * 2));
            case F16 -> Float.float16ToFloat(data.get(SHORT_LE, index * 2));
        };
    }

    /** Copies the whole tensor into a new fp32 array (only for small tensors: norms, scales). */
    public float[] toFloatArray() {
        long n = numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("tensor " + name + " is too large for a float[]");
        }
        float[] out = new float[(int) n];
        for (int i = 0; i < out.length; i++) {
            out[i] = getFloat(i);
        }
        return out;
    }

    /** Rows {@code [from, from + count)} along the first dimension, as a tensor of the same rank. */
    public HostTensor slice(long from, long count) {
        long rowElems = numel() / shape[0];
        long[] s = shape.clone();
        s[0] = count;
        return new HostTensor(name + "[" + from + ":" + (from + count) + "]", dtype, s,
                data.asSlice(from * rowElems * dtype.bytes(), count * rowElems * dtype.bytes()));
    }

    private static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    @Override
    public String toString() {
        return "HostTensor[" + name + " " + dtype + " " + Arrays.toString(shape) + "]";
    }

    @Override
    public boolean equals(Object o) {
        return this == o;
    }

    @Override
    public int hashCode() {
        return System.identityHashCode(this);
    }
}
