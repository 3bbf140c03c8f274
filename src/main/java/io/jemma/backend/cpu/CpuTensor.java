package io.jemma.backend.cpu;

import io.jemma.backend.Tensor;

/** A {@link Tensor} on the heap: element (r, c) is {@code data[offset + r * rowStride + c]}. */
record CpuTensor(float[] data, int offset, int rows, int cols, int rowStride) implements Tensor {

    CpuTensor(int rows, int cols) {
        this(new float[Math.multiplyExact(rows, cols)], 0, rows, cols, cols);
    }

    @Override
    public Tensor columns(int from, int count) {
        if (from < 0 || count < 0 || from + count > cols) {
            throw new IndexOutOfBoundsException("columns " + from + "+" + count + " of " + cols);
        }
        return new CpuTensor(data, offset + from, rows, count, rowStride);
    }

    /** Index of the first element of row r. */
    int row(int r) {
        return offset + r * rowStride;
    }

    static CpuTensor of(Tensor t) {
        if (t instanceof CpuTensor c) {
            return c;
        }
        throw new IllegalArgumentException("not a CPU tensor: " + t);
    }
}
