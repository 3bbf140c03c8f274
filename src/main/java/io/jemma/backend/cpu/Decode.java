package io.jemma.backend.cpu;

import io.jemma.backend.DType;
import java.lang.foreign.MemorySegment;

/**
 * The few-token matmul: for each group of 4 W rows, one pass over the rows per 4 tokens. The first pass brings the
 * rows from memory, later passes (tokens 5..) find them in L1/L2, so W is streamed from memory once per call.
 */
final class Decode {

    private Decode() {
    }

    /**
     * Output rows [{@code from}, {@code to}) of W for all tokens.
     *
     * @param xs activations [tokens, n], in pair-split order for two-byte weights (see {@link Widen})
     * @param y  receives row o of token t at {@code y[yOffset + t * yStride + (o - rowBase)]}
     */
    static void rows(MemorySegment w, DType dtype, int n, int from, int to, int tokens, float[] xs,
                     float[] y, int yOffset, int yStride, int rowBase) {
        long rowBytes = (long) n * dtype.bytes();
        int o = from;
        for (; o + 4 <= to; o += 4) {
            MemorySegment src = w;
            long row = o * rowBytes;
            long stride = rowBytes;
            DType kernelType = dtype;
            if (dtype == DType.F16) {
                // No cheap f16 widening inside the kernels: widen the 4 rows once and run the fp32 kernel on them.
                src = widenedRows(w, dtype, row, rowBytes, 4, n);
                row = 0;
                stride = 4L * n;
                kernelType = DType.F32;
            }
            int yo = yOffset + (o - rowBase);
            int t = 0;
            for (; t + 4 <= tokens; t += 4) {
                if (kernelType == DType.BF16) {
                    DecodeKernels.bf16Rows4Tokens4(src, row, stride, n, xs, t * n, y, yo + t * yStride, yStride);
                } else {
                    DecodeKernels.f32Rows4Tokens4(src, row, stride, n, xs, t * n, y, yo + t * yStride, yStride);
                }
            }
            for (; t < tokens; t++) {
                if (kernelType == DType.BF16) {
                    DecodeKernels.bf16Rows4Tokens1(src, row, stride, n, xs, t * n, y, yo + t * yStride);
                } else {
                    DecodeKernels.f32Rows4Tokens1(src, row, stride, n, xs, t * n, y, yo + t * yStride);
                }
            }
        }
        for (; o < to; o++) {
            MemorySegment src = w;
            long row = o * rowBytes;
            DType kernelType = dtype;
            if (dtype == DType.F16) {
                src = widenedRows(w, dtype, row, rowBytes, 1, n);
                row = 0;
                kernelType = DType.F32;
            }
            int yo = yOffset + (o - rowBase);
            for (int t = 0; t < tokens; t++) {
                y[yo + t * yStride] = kernelType == DType.BF16
                        ? DecodeKernels.bf16Dot(src, row, n, xs, t * n)
                        : DecodeKernels.f32Dot(src, row, n, xs, t * n);
            }
        }
    }

    /** {@code count} rows widened to fp32 (pair-split order) in this thread's native scratch. */
    private static MemorySegment widenedRows(MemorySegment w, DType dtype, long row, long rowBytes, int count, int n) {
        Scratch scratch = Scratch.get();
        float[] rows = scratch.widened(count * n);
        for (int r = 0; r < count; r++) {
            Widen.widen(w, row + r * rowBytes, dtype, n, rows, r * n);
        }
        MemorySegment out = scratch.widenedSegment((long) count * n * 4);
        MemorySegment.copy(rows, 0, out, Widen.FLOAT_LE, 0, count * n);
        return out;
    }
}
