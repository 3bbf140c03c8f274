package io.jemma.backend.cpu;

import static io.jemma.backend.cpu.Widen.F;
import static io.jemma.backend.cpu.Widen.L;

import jdk.incubator.vector.FloatVector;

/**
 * Register-tiled micro-kernels of the many-token matmul. Vectors run along <em>tokens</em>: a tile is
 * {@code rows x (vectors * L)} outputs, and each step over the depth k broadcasts one widened weight per row and
 * multiplies it with {@code vectors} loads of the packed, transposed activations. This needs no horizontal
 * reduction (outputs stay in lanes), and no transposition of W, whose widening therefore stays a straight vector
 * copy; only the much smaller activation block is transposed.
 *
 * <p>The main tile is 6 rows x 4 vectors (64 tokens with AVX-512): 24 accumulators + 4 activation vectors + 1
 * broadcast = 29 of the 32 vector registers. Per k it does 24 FMAs for 4 vector loads and 6 broadcast loads, so the
 * FMA units rather than the load ports are the limit.
 *
 * <p>Common parameters: {@code panel[r * kc + k]} the widened weights of row r; {@code xt[x0 + k * width + j]} the
 * packed activations of the tile's token j; {@code sums[s0 + r * sStride + j]} the tile's outputs, loaded and
 * added to unless {@code first}.
 */
final class PrefillKernels {

    /** W rows per tile. */
    static final int ROWS = 6;
    /** Token vectors per wide tile. */
    static final int VECTORS = 4;
    /** Tokens per wide tile. */
    static final int WIDE = VECTORS * L;

    private PrefillKernels() {
    }

    /** 6 rows x 4 token vectors. */
    static void rows6Wide(float[] panel, int kc, float[] xt, int x0, float[] sums, int s0, int sStride,
                          boolean first) {
        int r1 = kc, r2 = 2 * kc, r3 = 3 * kc, r4 = 4 * kc, r5 = 5 * kc;
        int s1 = s0 + sStride, s2 = s1 + sStride, s3 = s2 + sStride, s4 = s3 + sStride, s5 = s4 + sStride;
        FloatVector c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23;
        FloatVector c30, c31, c32, c33, c40, c41, c42, c43, c50, c51, c52, c53;
        if (first) {
            c00 = FloatVector.zero(F);
            c01 = c02 = c03 = c10 = c11 = c12 = c13 = c20 = c21 = c22 = c23 = c00;
            c30 = c31 = c32 = c33 = c40 = c41 = c42 = c43 = c50 = c51 = c52 = c53 = c00;
        } else {
            c00 = load(sums, s0); c01 = load(sums, s0 + L); c02 = load(sums, s0 + 2 * L); c03 = load(sums, s0 + 3 * L);
            c10 = load(sums, s1); c11 = load(sums, s1 + L); c12 = load(sums, s1 + 2 * L); c13 = load(sums, s1 + 3 * L);
            c20 = load(sums, s2); c21 = load(sums, s2 + L); c22 = load(sums, s2 + 2 * L); c23 = load(sums, s2 + 3 * L);
            c30 = load(sums, s3); c31 = load(sums, s3 + L); c32 = load(sums, s3 + 2 * L); c33 = load(sums, s3 + 3 * L);
            c40 = load(sums, s4); c41 = load(sums, s4 + L); c42 = load(sums, s4 + 2 * L); c43 = load(sums, s4 + 3 * L);
            c50 = load(sums, s5); c51 = load(sums, s5 + L); c52 = load(sums, s5 + 2 * L); c53 = load(sums, s5 + 3 * L);
        }
        int xi = x0;
        for (int k = 0; k < kc; k++, xi += WIDE) {
            FloatVector x0v = load(xt, xi), x1v = load(xt, xi + L), x2v = load(xt, xi + 2 * L), x3v = load(xt, xi + 3 * L);
            FloatVector b = FloatVector.broadcast(F, panel[k]);
            c00 = x0v.fma(b, c00); c01 = x1v.fma(b, c01); c02 = x2v.fma(b, c02); c03 = x3v.fma(b, c03);
            b = FloatVector.broadcast(F, panel[r1 + k]);
            c10 = x0v.fma(b, c10); c11 = x1v.fma(b, c11); c12 = x2v.fma(b, c12); c13 = x3v.fma(b, c13);
            b = FloatVector.broadcast(F, panel[r2 + k]);
            c20 = x0v.fma(b, c20); c21 = x1v.fma(b, c21); c22 = x2v.fma(b, c22); c23 = x3v.fma(b, c23);
            b = FloatVector.broadcast(F, panel[r3 + k]);
            c30 = x0v.fma(b, c30); c31 = x1v.fma(b, c31); c32 = x2v.fma(b, c32); c33 = x3v.fma(b, c33);
            b = FloatVector.broadcast(F, panel[r4 + k]);
            c40 = x0v.fma(b, c40); c41 = x1v.fma(b, c41); c42 = x2v.fma(b, c42); c43 = x3v.fma(b, c43);
            b = FloatVector.broadcast(F, panel[r5 + k]);
            c50 = x0v.fma(b, c50); c51 = x1v.fma(b, c51); c52 = x2v.fma(b, c52); c53 = x3v.fma(b, c53);
        }
        c00.intoArray(sums, s0); c01.intoArray(sums, s0 + L); c02.intoArray(sums, s0 + 2 * L); c03.intoArray(sums, s0 + 3 * L);
        c10.intoArray(sums, s1); c11.intoArray(sums, s1 + L); c12.intoArray(sums, s1 + 2 * L); c13.intoArray(sums, s1 + 3 * L);
        c20.intoArray(sums, s2); c21.intoArray(sums, s2 + L); c22.intoArray(sums, s2 + 2 * L); c23.intoArray(sums, s2 + 3 * L);
        c30.intoArray(sums, s3); c31.intoArray(sums, s3 + L); c32.intoArray(sums, s3 + 2 * L); c33.intoArray(sums, s3 + 3 * L);
        c40.intoArray(sums, s4); c41.intoArray(sums, s4 + L); c42.intoArray(sums, s4 + 2 * L); c43.intoArray(sums, s4 + 3 * L);
        c50.intoArray(sums, s5); c51.intoArray(sums, s5 + L); c52.intoArray(sums, s5 + 2 * L); c53.intoArray(sums, s5 + 3 * L);
    }

    /** 6 rows x 1 token vector: the tokens left over after the wide tiles. */
    static void rows6Narrow(float[] panel, int kc, float[] xt, int x0, float[] sums, int s0, int sStride,
                            boolean first) {
        int r1 = kc, r2 = 2 * kc, r3 = 3 * kc, r4 = 4 * kc, r5 = 5 * kc;
        int s1 = s0 + sStride, s2 = s1 + sStride, s3 = s2 + sStride, s4 = s3 + sStride, s5 = s4 + sStride;
        FloatVector c0, c1, c2, c3, c4, c5;
        if (first) {
            c0 = c1 = c2 = c3 = c4 = c5 = FloatVector.zero(F);
        } else {
            c0 = load(sums, s0); c1 = load(sums, s1); c2 = load(sums, s2);
            c3 = load(sums, s3); c4 = load(sums, s4); c5 = load(sums, s5);
        }
        int xi = x0;
        for (int k = 0; k < kc; k++, xi += L) {
            FloatVector a = load(xt, xi);
            c0 = a.fma(FloatVector.broadcast(F, panel[k]), c0);
            c1 = a.fma(FloatVector.broadcast(F, panel[r1 + k]), c1);
            c2 = a.fma(FloatVector.broadcast(F, panel[r2 + k]), c2);
            c3 = a.fma(FloatVector.broadcast(F, panel[r3 + k]), c3);
            c4 = a.fma(FloatVector.broadcast(F, panel[r4 + k]), c4);
            c5 = a.fma(FloatVector.broadcast(F, panel[r5 + k]), c5);
        }
        c0.intoArray(sums, s0); c1.intoArray(sums, s1); c2.intoArray(sums, s2);
        c3.intoArray(sums, s3); c4.intoArray(sums, s4); c5.intoArray(sums, s5);
    }

    /**
     * One row x {@code vectors} token vectors (1..4): the rows left over after the 6-row tiles. {@code p0} is the
     * row's offset in {@code panel}.
     */
    static void row1(float[] panel, int p0, int kc, int vectors, float[] xt, int x0, float[] sums, int s0,
                     boolean first) {
        int width = vectors * L;
        for (int v = 0; v < vectors; v++) {
            FloatVector c = first ? FloatVector.zero(F) : load(sums, s0 + v * L);
            FloatVector d = FloatVector.zero(F);
            int xi = x0 + v * L;
            int k = 0;
            for (; k + 1 < kc; k += 2, xi += 2 * width) {
                c = load(xt, xi).fma(FloatVector.broadcast(F, panel[p0 + k]), c);
                d = load(xt, xi + width).fma(FloatVector.broadcast(F, panel[p0 + k + 1]), d);
            }
            if (k < kc) {
                c = load(xt, xi).fma(FloatVector.broadcast(F, panel[p0 + k]), c);
            }
            c.add(d).intoArray(sums, s0 + v * L);
        }
    }

    private static FloatVector load(float[] a, int i) {
        return FloatVector.fromArray(F, a, i);
    }
}
