package io.jemma.backend.cpu;

import static io.jemma.backend.cpu.PrefillKernels.ROWS;
import static io.jemma.backend.cpu.PrefillKernels.VECTORS;
import static io.jemma.backend.cpu.PrefillKernels.WIDE;
import static io.jemma.backend.cpu.Widen.GROUP;
import static io.jemma.backend.cpu.Widen.L;

import io.jemma.backend.DType;
import java.lang.foreign.MemorySegment;

/**
 * The many-token matmul (prefill), compute-bound. Per chunk of tokens:
 * <ol>
 *   <li>pack the activations transposed, in tiles of {@link PrefillKernels#WIDE} tokens (then of {@code L}):
 *       {@code xt[m0 * n + k * width + j]} for token {@code m0 + j}, padded with zero tokens to whole vectors;</li>
 *   <li>split W's rows into tasks; a task walks the depth in blocks of {@link #DEPTH}, widens 6 rows x
 *       {@code DEPTH} weights into an L1-sized panel and runs the register tiles over all tokens with it,
 *       accumulating into per-task sums [rows, tokens] that finally go, transposed, to y.</li>
 * </ol>
 * Each weight is widened once per chunk and then used for up to {@link #MAX_CHUNK} tokens.
 */
final class Prefill {

    /**
     * Depth of a panel: 6 rows x 256 fp32 = 6 KB stays in L1 while the tiles stream the activation block
     * (256 x tokens x 4 bytes, 512 KB at 512 tokens) from L2; a multiple of every pair-split group size.
     */
    static final int DEPTH = 256;
    /** Most tokens per chunk; bounds the packed activations and the per-task sums. */
    static final int MAX_CHUNK = 512;
    /** Packed activations are kept under this many floats (16 MB): long rows get shorter chunks. */
    private static final int MAX_PACKED = 4 << 20;

    private Prefill() {
    }

    /** Tokens per chunk for rows of length n: a multiple of the wide tile. */
    static int chunkTokens(int n) {
        int fit = MAX_PACKED / n / WIDE * WIDE;
        return Math.max(WIDE, Math.min(MAX_CHUNK, fit));
    }

    /** Rows per task: multiples of the tile, about two tasks per thread, at most 96 rows (sums of 192 KB). */
    static int rowsPerTask(int rows, int threads) {
        int tiles = (rows + ROWS - 1) / ROWS;
        int perTask = (tiles + 2 * threads - 1) / (2 * threads);
        return ROWS * Math.max(1, Math.min(16, perTask));
    }

    /** Packs tokens [m0, m0 + width) of the chunk (m real tokens from x row {@code t0}) transposed into xt. */
    static void pack(float[] x, int xOffset, int n, int t0, int m, int m0, int width, boolean pairSplit,
                     float[] xt) {
        int full = pairSplit ? Widen.fullGroups(n) : 0;
        for (int j = 0; j < width; j++) {
            int dst = m0 * n + j;
            if (m0 + j >= m) {
                for (int k = 0; k < n; k++) {
                    xt[dst + k * width] = 0f;
                }
                continue;
            }
            int src = xOffset + (t0 + m0 + j) * n;
            for (int g = 0; g < full; g += GROUP) {
                for (int q = 0; q < L; q++) {
                    xt[dst + (g + q) * width] = x[src + g + 2 * q];
                    xt[dst + (g + L + q) * width] = x[src + g + 2 * q + 1];
                }
            }
            for (int k = full; k < n; k++) {
                xt[dst + k * width] = x[src + k];
            }
        }
    }

    /**
     * Output rows [a, b) for the chunk's m tokens (mpad after padding), written to
     * {@code y[yOffset + (t0 + t) * yStride + (o - rowBase)]}.
     */
    static void rows(MemorySegment w, DType dtype, int n, int a, int b, float[] xt, int t0, int m, int mpad,
                     float[] y, int yOffset, int yStride, int rowBase) {
        Scratch scratch = Scratch.get();
        float[] sums = scratch.tileSums((b - a) * mpad);
        float[] panel = scratch.panel(ROWS * DEPTH);
        long rowBytes = (long) n * dtype.bytes();
        int wideEnd = mpad / WIDE * WIDE;
        for (int kb = 0; kb < n; kb += DEPTH) {
            int kc = Math.min(DEPTH, n - kb);
            boolean first = kb == 0;
            for (int r0 = a; r0 < b; r0 += ROWS) {
                int nr = Math.min(ROWS, b - r0);
                for (int r = 0; r < nr; r++) {
                    Widen.widen(w, (r0 + r) * rowBytes + (long) kb * dtype.bytes(), dtype, kc, panel, r * kc);
                }
                int s0 = (r0 - a) * mpad;
                if (nr == ROWS) {
                    for (int m0 = 0; m0 < wideEnd; m0 += WIDE) {
                        PrefillKernels.rows6Wide(panel, kc, xt, m0 * n + kb * WIDE, sums, s0 + m0, mpad, first);
                    }
                    for (int m0 = wideEnd; m0 < mpad; m0 += L) {
                        PrefillKernels.rows6Narrow(panel, kc, xt, m0 * n + kb * L, sums, s0 + m0, mpad, first);
                    }
                } else {
                    for (int r = 0; r < nr; r++) {
                        int sr = s0 + r * mpad;
                        for (int m0 = 0; m0 < wideEnd; m0 += WIDE) {
                            PrefillKernels.row1(panel, r * kc, kc, VECTORS, xt, m0 * n + kb * WIDE, sums, sr + m0,
                                    first);
                        }
                        for (int m0 = wideEnd; m0 < mpad; m0 += L) {
                            PrefillKernels.row1(panel, r * kc, kc, 1, xt, m0 * n + kb * L, sums, sr + m0, first);
                        }
                    }
                }
            }
        }
        for (int t = 0; t < m; t++) {
            int yo = yOffset + (t0 + t) * yStride - rowBase;
            for (int o = a; o < b; o++) {
                y[yo + o] = sums[(o - a) * mpad + t];
            }
        }
    }
}
