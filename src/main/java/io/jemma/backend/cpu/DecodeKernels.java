package io.jemma.backend.cpu;

import static io.jemma.backend.cpu.Widen.F;
import static io.jemma.backend.cpu.Widen.GROUP;
import static io.jemma.backend.cpu.Widen.I;
import static io.jemma.backend.cpu.Widen.L;
import static io.jemma.backend.cpu.Widen.LE;
import static io.jemma.backend.cpu.Widen.bf16Even;
import static io.jemma.backend.cpu.Widen.bf16Odd;
import static jdk.incubator.vector.VectorOperators.ADD;

import io.jemma.backend.DType;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

/**
 * Dot-product kernels for few tokens (decode), where a matmul is bound by reading the weights: each kernel streams
 * a group of W rows straight from the (mapped) segment, widens every weight vector once and uses it for all tokens
 * of the call, and reduces across lanes only at the end of the row.
 *
 * <p>Tiles are 4 rows x 4 tokens: 16 accumulators plus 8 widened weight vectors and 2 activation vectors fit the 32
 * vector registers of AVX-512 (C2 spills beyond that), and 4 rows give the memory system 4 streams at once
 * ({@link Decode} picks them far apart).
 * Activations are in pair-split order for two-byte weights (see {@link Widen}) and natural order for fp32.
 *
 * <p>Common parameters: {@code w} the weights, {@code row} the byte offset of the tile's first row, {@code rowBytes}
 * the distance between rows, {@code n} the row length; {@code x[x0 + t * xStride + i]} the activations of token t
 * (the 1-token kernels take one token at {@code x0});
 * results go to {@code y[y0 + t * yStride + r * yRowStep]} for row r of the tile.
 */
final class DecodeKernels {

    private DecodeKernels() {
    }

    /** BF16 weights, 4 rows x 4 tokens. */
    static void bf16Rows4Tokens4(MemorySegment w, long row, long rowBytes, int n, float[] x, int x0,
                                 int xStride, float[] y, int y0, int yRowStep, int yStride) {
        long w0 = row, w1 = row + rowBytes, w2 = row + 2 * rowBytes, w3 = row + 3 * rowBytes;
        int t0 = x0, t1 = x0 + xStride, t2 = x0 + 2 * xStride, t3 = x0 + 3 * xStride;
        FloatVector c00 = FloatVector.zero(F), c01 = c00, c02 = c00, c03 = c00;
        FloatVector c10 = c00, c11 = c00, c12 = c00, c13 = c00;
        FloatVector c20 = c00, c21 = c00, c22 = c00, c23 = c00;
        FloatVector c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        int full = Widen.fullGroups(n);
        for (int k = 0; k < full; k += GROUP) {
            long b = 2L * k;
            IntVector p0 = IntVector.fromMemorySegment(I, w, w0 + b, LE);
            IntVector p1 = IntVector.fromMemorySegment(I, w, w1 + b, LE);
            IntVector p2 = IntVector.fromMemorySegment(I, w, w2 + b, LE);
            IntVector p3 = IntVector.fromMemorySegment(I, w, w3 + b, LE);
            FloatVector e0 = bf16Even(p0), o0 = bf16Odd(p0), e1 = bf16Even(p1), o1 = bf16Odd(p1);
            FloatVector e2 = bf16Even(p2), o2 = bf16Odd(p2), e3 = bf16Even(p3), o3 = bf16Odd(p3);
            FloatVector xe = FloatVector.fromArray(F, x, t0 + k), xo = FloatVector.fromArray(F, x, t0 + k + L);
            c00 = o0.fma(xo, e0.fma(xe, c00));
            c10 = o1.fma(xo, e1.fma(xe, c10));
            c20 = o2.fma(xo, e2.fma(xe, c20));
            c30 = o3.fma(xo, e3.fma(xe, c30));
            xe = FloatVector.fromArray(F, x, t1 + k);
            xo = FloatVector.fromArray(F, x, t1 + k + L);
            c01 = o0.fma(xo, e0.fma(xe, c01));
            c11 = o1.fma(xo, e1.fma(xe, c11));
            c21 = o2.fma(xo, e2.fma(xe, c21));
            c31 = o3.fma(xo, e3.fma(xe, c31));
            xe = FloatVector.fromArray(F, x, t2 + k);
            xo = FloatVector.fromArray(F, x, t2 + k + L);
            c02 = o0.fma(xo, e0.fma(xe, c02));
            c12 = o1.fma(xo, e1.fma(xe, c12));
            c22 = o2.fma(xo, e2.fma(xe, c22));
            c32 = o3.fma(xo, e3.fma(xe, c32));
            xe = FloatVector.fromArray(F, x, t3 + k);
            xo = FloatVector.fromArray(F, x, t3 + k + L);
            c03 = o0.fma(xo, e0.fma(xe, c03));
            c13 = o1.fma(xo, e1.fma(xe, c13));
            c23 = o2.fma(xo, e2.fma(xe, c23));
            c33 = o3.fma(xo, e3.fma(xe, c33));
        }
        int y1 = y0 + yStride, y2 = y0 + 2 * yStride, y3 = y0 + 3 * yStride;
        y[y0] = c00.reduceLanes(ADD) + tail(w, w0, DType.BF16, full, n, x, t0);
        y[y0 + yRowStep] = c10.reduceLanes(ADD) + tail(w, w1, DType.BF16, full, n, x, t0);
        y[y0 + 2 * yRowStep] = c20.reduceLanes(ADD) + tail(w, w2, DType.BF16, full, n, x, t0);
        y[y0 + 3 * yRowStep] = c30.reduceLanes(ADD) + tail(w, w3, DType.BF16, full, n, x, t0);
        y[y1] = c01.reduceLanes(ADD) + tail(w, w0, DType.BF16, full, n, x, t1);
        y[y1 + yRowStep] = c11.reduceLanes(ADD) + tail(w, w1, DType.BF16, full, n, x, t1);
        y[y1 + 2 * yRowStep] = c21.reduceLanes(ADD) + tail(w, w2, DType.BF16, full, n, x, t1);
        y[y1 + 3 * yRowStep] = c31.reduceLanes(ADD) + tail(w, w3, DType.BF16, full, n, x, t1);
        y[y2] = c02.reduceLanes(ADD) + tail(w, w0, DType.BF16, full, n, x, t2);
        y[y2 + yRowStep] = c12.reduceLanes(ADD) + tail(w, w1, DType.BF16, full, n, x, t2);
        y[y2 + 2 * yRowStep] = c22.reduceLanes(ADD) + tail(w, w2, DType.BF16, full, n, x, t2);
        y[y2 + 3 * yRowStep] = c32.reduceLanes(ADD) + tail(w, w3, DType.BF16, full, n, x, t2);
        y[y3] = c03.reduceLanes(ADD) + tail(w, w0, DType.BF16, full, n, x, t3);
        y[y3 + yRowStep] = c13.reduceLanes(ADD) + tail(w, w1, DType.BF16, full, n, x, t3);
        y[y3 + 2 * yRowStep] = c23.reduceLanes(ADD) + tail(w, w2, DType.BF16, full, n, x, t3);
        y[y3 + 3 * yRowStep] = c33.reduceLanes(ADD) + tail(w, w3, DType.BF16, full, n, x, t3);
    }

    /**
     * BF16 weights, 4 rows x 1 token. Even and odd halves accumulate separately: 8 independent FMA chains keep
     * the FMA latency (4 cycles) off the critical path.
     */
    static void bf16Rows4Tokens1(MemorySegment w, long row, long rowBytes, int n, float[] x, int x0,
                                 float[] y, int y0, int yRowStep) {
        long w0 = row, w1 = row + rowBytes, w2 = row + 2 * rowBytes, w3 = row + 3 * rowBytes;
        FloatVector c0 = FloatVector.zero(F), c1 = c0, c2 = c0, c3 = c0, d0 = c0, d1 = c0, d2 = c0, d3 = c0;
        int full = Widen.fullGroups(n);
        for (int k = 0; k < full; k += GROUP) {
            long b = 2L * k;
            FloatVector xe = FloatVector.fromArray(F, x, x0 + k), xo = FloatVector.fromArray(F, x, x0 + k + L);
            IntVector p0 = IntVector.fromMemorySegment(I, w, w0 + b, LE);
            IntVector p1 = IntVector.fromMemorySegment(I, w, w1 + b, LE);
            IntVector p2 = IntVector.fromMemorySegment(I, w, w2 + b, LE);
            IntVector p3 = IntVector.fromMemorySegment(I, w, w3 + b, LE);
            c0 = bf16Even(p0).fma(xe, c0);
            d0 = bf16Odd(p0).fma(xo, d0);
            c1 = bf16Even(p1).fma(xe, c1);
            d1 = bf16Odd(p1).fma(xo, d1);
            c2 = bf16Even(p2).fma(xe, c2);
            d2 = bf16Odd(p2).fma(xo, d2);
            c3 = bf16Even(p3).fma(xe, c3);
            d3 = bf16Odd(p3).fma(xo, d3);
        }
        y[y0] = c0.add(d0).reduceLanes(ADD) + tail(w, w0, DType.BF16, full, n, x, x0);
        y[y0 + yRowStep] = c1.add(d1).reduceLanes(ADD) + tail(w, w1, DType.BF16, full, n, x, x0);
        y[y0 + 2 * yRowStep] = c2.add(d2).reduceLanes(ADD) + tail(w, w2, DType.BF16, full, n, x, x0);
        y[y0 + 3 * yRowStep] = c3.add(d3).reduceLanes(ADD) + tail(w, w3, DType.BF16, full, n, x, x0);
    }

    /** BF16 weights, 1 row x 1 token: the leftover rows of a task. */
    static float bf16Dot(MemorySegment w, long row, int n, float[] x, int x0) {
        FloatVector c = FloatVector.zero(F), d = c;
        int full = Widen.fullGroups(n);
        for (int k = 0; k < full; k += GROUP) {
            IntVector p = IntVector.fromMemorySegment(I, w, row + 2L * k, LE);
            c = bf16Even(p).fma(FloatVector.fromArray(F, x, x0 + k), c);
            d = bf16Odd(p).fma(FloatVector.fromArray(F, x, x0 + k + L), d);
        }
        return c.add(d).reduceLanes(ADD) + tail(w, row, DType.BF16, full, n, x, x0);
    }

    /** FP32 weights, 4 rows x 4 tokens. */
    static void f32Rows4Tokens4(MemorySegment w, long row, long rowBytes, int n, float[] x, int x0,
                                int xStride, float[] y, int y0, int yRowStep, int yStride) {
        long w0 = row, w1 = row + rowBytes, w2 = row + 2 * rowBytes, w3 = row + 3 * rowBytes;
        int t0 = x0, t1 = x0 + xStride, t2 = x0 + 2 * xStride, t3 = x0 + 3 * xStride;
        FloatVector c00 = FloatVector.zero(F), c01 = c00, c02 = c00, c03 = c00;
        FloatVector c10 = c00, c11 = c00, c12 = c00, c13 = c00;
        FloatVector c20 = c00, c21 = c00, c22 = c00, c23 = c00;
        FloatVector c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        int full = n - n % L;
        for (int k = 0; k < full; k += L) {
            long b = 4L * k;
            FloatVector v0 = FloatVector.fromMemorySegment(F, w, w0 + b, LE);
            FloatVector v1 = FloatVector.fromMemorySegment(F, w, w1 + b, LE);
            FloatVector v2 = FloatVector.fromMemorySegment(F, w, w2 + b, LE);
            FloatVector v3 = FloatVector.fromMemorySegment(F, w, w3 + b, LE);
            FloatVector a = FloatVector.fromArray(F, x, t0 + k);
            c00 = v0.fma(a, c00);
            c10 = v1.fma(a, c10);
            c20 = v2.fma(a, c20);
            c30 = v3.fma(a, c30);
            a = FloatVector.fromArray(F, x, t1 + k);
            c01 = v0.fma(a, c01);
            c11 = v1.fma(a, c11);
            c21 = v2.fma(a, c21);
            c31 = v3.fma(a, c31);
            a = FloatVector.fromArray(F, x, t2 + k);
            c02 = v0.fma(a, c02);
            c12 = v1.fma(a, c12);
            c22 = v2.fma(a, c22);
            c32 = v3.fma(a, c32);
            a = FloatVector.fromArray(F, x, t3 + k);
            c03 = v0.fma(a, c03);
            c13 = v1.fma(a, c13);
            c23 = v2.fma(a, c23);
            c33 = v3.fma(a, c33);
        }
        int y1 = y0 + yStride, y2 = y0 + 2 * yStride, y3 = y0 + 3 * yStride;
        y[y0] = c00.reduceLanes(ADD) + tail(w, w0, DType.F32, full, n, x, t0);
        y[y0 + yRowStep] = c10.reduceLanes(ADD) + tail(w, w1, DType.F32, full, n, x, t0);
        y[y0 + 2 * yRowStep] = c20.reduceLanes(ADD) + tail(w, w2, DType.F32, full, n, x, t0);
        y[y0 + 3 * yRowStep] = c30.reduceLanes(ADD) + tail(w, w3, DType.F32, full, n, x, t0);
        y[y1] = c01.reduceLanes(ADD) + tail(w, w0, DType.F32, full, n, x, t1);
        y[y1 + yRowStep] = c11.reduceLanes(ADD) + tail(w, w1, DType.F32, full, n, x, t1);
        y[y1 + 2 * yRowStep] = c21.reduceLanes(ADD) + tail(w, w2, DType.F32, full, n, x, t1);
        y[y1 + 3 * yRowStep] = c31.reduceLanes(ADD) + tail(w, w3, DType.F32, full, n, x, t1);
        y[y2] = c02.reduceLanes(ADD) + tail(w, w0, DType.F32, full, n, x, t2);
        y[y2 + yRowStep] = c12.reduceLanes(ADD) + tail(w, w1, DType.F32, full, n, x, t2);
        y[y2 + 2 * yRowStep] = c22.reduceLanes(ADD) + tail(w, w2, DType.F32, full, n, x, t2);
        y[y2 + 3 * yRowStep] = c32.reduceLanes(ADD) + tail(w, w3, DType.F32, full, n, x, t2);
        y[y3] = c03.reduceLanes(ADD) + tail(w, w0, DType.F32, full, n, x, t3);
        y[y3 + yRowStep] = c13.reduceLanes(ADD) + tail(w, w1, DType.F32, full, n, x, t3);
        y[y3 + 2 * yRowStep] = c23.reduceLanes(ADD) + tail(w, w2, DType.F32, full, n, x, t3);
        y[y3 + 3 * yRowStep] = c33.reduceLanes(ADD) + tail(w, w3, DType.F32, full, n, x, t3);
    }

    /** FP32 weights, 4 rows x 1 token, two accumulators per row for latency. */
    static void f32Rows4Tokens1(MemorySegment w, long row, long rowBytes, int n, float[] x, int x0,
                                float[] y, int y0, int yRowStep) {
        long w0 = row, w1 = row + rowBytes, w2 = row + 2 * rowBytes, w3 = row + 3 * rowBytes;
        FloatVector c0 = FloatVector.zero(F), c1 = c0, c2 = c0, c3 = c0, d0 = c0, d1 = c0, d2 = c0, d3 = c0;
        int full = n - n % (2 * L);
        for (int k = 0; k < full; k += 2 * L) {
            long b = 4L * k, b2 = 4L * (k + L);
            FloatVector a = FloatVector.fromArray(F, x, x0 + k), a2 = FloatVector.fromArray(F, x, x0 + k + L);
            c0 = FloatVector.fromMemorySegment(F, w, w0 + b, LE).fma(a, c0);
            d0 = FloatVector.fromMemorySegment(F, w, w0 + b2, LE).fma(a2, d0);
            c1 = FloatVector.fromMemorySegment(F, w, w1 + b, LE).fma(a, c1);
            d1 = FloatVector.fromMemorySegment(F, w, w1 + b2, LE).fma(a2, d1);
            c2 = FloatVector.fromMemorySegment(F, w, w2 + b, LE).fma(a, c2);
            d2 = FloatVector.fromMemorySegment(F, w, w2 + b2, LE).fma(a2, d2);
            c3 = FloatVector.fromMemorySegment(F, w, w3 + b, LE).fma(a, c3);
            d3 = FloatVector.fromMemorySegment(F, w, w3 + b2, LE).fma(a2, d3);
        }
        y[y0] = c0.add(d0).reduceLanes(ADD) + tail(w, w0, DType.F32, full, n, x, x0);
        y[y0 + yRowStep] = c1.add(d1).reduceLanes(ADD) + tail(w, w1, DType.F32, full, n, x, x0);
        y[y0 + 2 * yRowStep] = c2.add(d2).reduceLanes(ADD) + tail(w, w2, DType.F32, full, n, x, x0);
        y[y0 + 3 * yRowStep] = c3.add(d3).reduceLanes(ADD) + tail(w, w3, DType.F32, full, n, x, x0);
    }

    /** FP32 weights, 1 row x 1 token. */
    static float f32Dot(MemorySegment w, long row, int n, float[] x, int x0) {
        FloatVector c = FloatVector.zero(F);
        int full = n - n % L;
        for (int k = 0; k < full; k += L) {
            c = FloatVector.fromMemorySegment(F, w, row + 4L * k, LE).fma(FloatVector.fromArray(F, x, x0 + k), c);
        }
        return c.reduceLanes(ADD) + tail(w, row, DType.F32, full, n, x, x0);
    }

    /** The scalar part of a dot product: elements [from, n) of one row, in natural order in both operands. */
    static float tail(MemorySegment w, long row, DType dtype, int from, int n, float[] x, int x0) {
        float sum = 0;
        for (int k = from; k < n; k++) {
            sum += Widen.scalar(w, row + (long) k * dtype.bytes(), dtype) * x[x0 + k];
        }
        return sum;
    }
}
