package io.jemma.backend.cuda;

import io.jemma.backend.Tensor;

/**
 * An fp32 activation matrix in device memory: element (r, c) is at float index
 * {@code offset + r * rowStride + c} of {@code buffer}. Column views share the buffer, which keeps the
 * memory alive as long as any view is reachable.
 */
record CudaTensor(DeviceBuffer buffer, long offset, int rows, int cols, int rowStride) implements Tensor {

    @Override
    public Tensor columns(int from, int count) {
        if (from < 0 || count < 0 || from + count > cols) {
            throw new IndexOutOfBoundsException("columns " + from + "+" + count + " of " + cols);
        }
        return new CudaTensor(buffer, offset + from, rows, count, rowStride);
    }

    /** Device address of element (0, 0). */
    long address() {
        return buffer.address() + offset * Float.BYTES;
    }

    /** Byte offset of element (0, 0) in the buffer. */
    long byteOffset() {
        return offset * Float.BYTES;
    }

    static CudaTensor of(Tensor t) {
        if (t instanceof CudaTensor c) {
            return c;
        }
        throw new IllegalArgumentException("not a CUDA tensor: " + t);
    }

    @Override
    public String toString() {
        return "CudaTensor[" + rows + ", " + cols + (contiguous() ? "" : " stride " + rowStride) + "]";
    }
}
