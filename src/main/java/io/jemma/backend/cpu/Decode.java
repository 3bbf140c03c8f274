package io.jemma.backend.cpu;

import io.jemma.backend.DType;
import java.lang.foreign.MemorySegment;

/**
 * The few-token matmul, bound by reading W: each tile of 4 W rows is read from memory once and used for all tokens
 * (the first 4-token pass brings the rows in, later passes find them in L1/L2).
 *
 * <p>The 4 rows of a tile are not neighbours but a quarter of the task's rows apart, so each thread reads 4
 * independent sequential streams. Measured on the 2-core Zen 4 box this reads W 10-40% faster than 4 adjacent rows
 * (which make one stream hopping between pages). Blocking the depth to keep long activation rows in L1 was slower:
 * the short pieces of rows it reads defeat the hardware prefetcher.
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
        int quarter = (to - from) / 4;
        for (int i = 0; i < quarter; i++) {
            // Tile rows: o, o + quarter, o + 2 * quarter, o + 3 * quarter.
            int o = from + i;
            MemorySegment src = w;
            long row = o * rowBytes;
            long stride = quarter * rowBytes;
            DType kernelType = dtype;
            if (dtype == DType.F16) {
                // No cheap f16 widening inside the kernels: widen the 4 rows once, run the fp32 kernel on them.
                src = widenedRows(w, dtype, row, stride, 4, n);
                row = 0;
                stride = 4L * n;
                kernelType = DType.F32;
            }
            int yo = yOffset + (o - rowBase);
            int t = 0;
            for (; t + 4 <= tokens; t += 4) {
                if (kernelType == DType.BF16) {
                    DecodeKernels.bf16Rows4Tokens4(src, row, stride, n, xs, t * n, n, y, yo + t * yStride, quarter,
                            yStride);
                } else {
                    DecodeKernels.f32Rows4Tokens4(src, row, stride, n, xs, t * n, n, y, yo + t * yStride, quarter,
                            yStride);
                }
            }
            for (; t < tokens; t++) {
                if (kernelType == DType.BF16) {
                    DecodeKernels.bf16Rows4Tokens1(src, row, stride, n, xs, t * n, y, yo + t * yStride, quarter);
                } else {
                    DecodeKernels.f32Rows4Tokens1(src, row, stride, n, xs, t * n, y, yo + t * yStride, quarter);
                }
            }
        }
        for (int o = from + 4 * quarter; o < to; o++) {
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

    /** {@code count} rows of {@code n} weights, {@code rowBytes} apart, widened to fp32 (pair-split order). */
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
