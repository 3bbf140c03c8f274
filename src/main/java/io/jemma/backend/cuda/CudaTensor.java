package io.jemma.backend.cuda;

import io.jemma.backend.Tensor;

/**
 * An fp32 activation matrix in device memory: element (r, c) is at float index
 * {@code offset + r * rowStride + c} of {@code buffer}. Column views share the buffer, which keeps the
 * memory alive as long as any view is reachable.
 */
record CudaTensor(DeviceBuffer buffer, long offset, int rows, int cols, int rowStride, Bf16Operand operand)
        implements Tensor {

    CudaTensor(DeviceBuffer buffer, long offset, int rows, int cols, int rowStride) {
        this(buffer, offset, rows, cols, rowStride, null);
    }

    /**
     * A bf16 copy of a whole tensor, {@code [rows, cols]} contiguous, that the kernel which wrote the tensor
     * also wrote ({@link io.jemma.backend.Backend#allocateMatmulInput}): the GEMM reads it instead of converting
     * x. Valid only while {@link #current} (the writer sets it; every other write to the tensor clears it).
     */
    static final class Bf16Operand {
        private final DeviceBuffer buffer;
        /**
         * A projection's output ({@link io.jemma.backend.Backend#allocateMatmulOutput}): a GEMM writing the tensor
         * stores only this copy (cuBLASLt bf16 D), for a reader that takes bf16 input.
         */
        private final boolean gemmOutput;
        private boolean current;
        /** The writer stored only this copy, not the fp32 values ({@link io.jemma.backend.Backend#gatedMlpInput}). */
        private boolean only;

        Bf16Operand(DeviceBuffer buffer) {
            this(buffer, false);
        }

        Bf16Operand(DeviceBuffer buffer, boolean gemmOutput) {
            this.buffer = buffer;
            this.gemmOutput = gemmOutput;
        }

        boolean gemmOutput() {
            return gemmOutput;
        }

        long address() {
            return buffer.address();
        }

        DeviceBuffer buffer() {
            return buffer;
        }

        boolean current() {
            return current;
        }

        void current(boolean on) {
            current = on;
            only = false;
        }

        /** Current, and the only form of the values: the tensor's fp32 memory was not written. */
        void currentOnly() {
            current = true;
            only = true;
        }

        /**
         * Neither form holds the values: the bf16-input QKV norm stored K and V only in the attention cache (their
         * only reader), so the tensor's fp32 memory was not written and the copy still holds the raw projection.
         */
        void spent() {
            current = false;
            only = true;
        }
    }

    /** The bf16 copy's address when it holds the tensor's current values, else 0. */
    long currentOperand() {
        return operand != null && operand.current() && offset == 0 && cols == rowStride ? operand.address() : 0;
    }

    /** Whether the values are only in the bf16 copy (its fp32 memory holds whatever was there before). */
    boolean fp32Stale() {
        return operand != null && operand.only;
    }

    /** The bf16 copy's address when it is the only form of the values (a bf16-only GEMM output), else 0. */
    long onlyOperand() {
        return fp32Stale() ? currentOperand() : 0;
    }

    /** Whether a writer should also write the bf16 copy: the whole tensor has one. */
    long operandToWrite() {
        return operand != null && offset == 0 && cols == rowStride ? operand.address() : 0;
    }

    /** The tensor is being written by a kernel that does not update its bf16 copy. */
    CudaTensor written() {
        if (operand != null) {
            operand.current(false);
        }
        return this;
    }

    @Override
    public Tensor columns(int from, int count) {
        if (from < 0 || count < 0 || from + count > cols) {
            throw new IndexOutOfBoundsException("columns " + from + "+" + count + " of " + cols);
        }
        // A view shares the whole tensor's bf16 copy only so that a write through it can clear it.
        return new CudaTensor(buffer, offset + from, rows, count, rowStride, operand);
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
