package io.jemma.backend.cpu;

import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

import io.jemma.backend.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Widening of weights to fp32, on vectors.
 *
 * <p>Two-byte weights (bf16, f16) are loaded {@link #GROUP} at a time as one {@code IntVector} of pairs and split
 * into two {@code FloatVector}s: the even-indexed elements (the low halves, as the data is little-endian) and the
 * odd-indexed ones (the high halves). For bf16 that is one shift and one and per {@code GROUP} weights with no
 * cross-lane work, where ShortVector to IntVector widening needs a cross-lane conversion per {@code L} weights.
 * A dot product does not care about the order of its terms as long as the activations are permuted the same way,
 * so the kernels keep activations and widened weights in <em>pair-split order</em>: within every full group of
 * {@code GROUP} elements, the even ones first, then the odd ones; the tail that does not fill a group stays in
 * natural order. fp32 weights use natural order.
 */
final class Widen {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** fp32 lanes per vector. */
    static final int L = F.length();
    /** Two-byte weights per pair-split group: one IntVector's worth. */
    static final int GROUP = 2 * L;

    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);

    private Widen() {
    }

    // ---- bf16: the upper 16 bits of an fp32 ----

    static FloatVector bf16Even(IntVector pairs) {
        return pairs.lanewise(LSHL, 16).reinterpretAsFloats();
    }

    static FloatVector bf16Odd(IntVector pairs) {
        return pairs.and(0xFFFF0000).reinterpretAsFloats();
    }

    // ---- f16: JDK 25's incubator has no half-float vector conversion, so do it with integer ops ----

    static FloatVector f16Even(IntVector pairs) {
        return f16ToFloat(pairs.and(0xFFFF));
    }

    static FloatVector f16Odd(IntVector pairs) {
        return f16ToFloat(pairs.lanewise(LSHR, 16));
    }

    /**
     * IEEE half bits (in the low 16 bits of each lane) to fp32, bit-exact with {@link Float#float16ToFloat}.
     * Normal numbers only need the exponent rebiased (15 -> 127); infinities and NaNs need the fp32 maximum
     * exponent; subnormals (exponent 0, value m * 2^-24) are converted through int -> float, exact for m < 2^10,
     * which also avoids feeding subnormal operands to the FPU.
     */
    static FloatVector f16ToFloat(IntVector half) {
        IntVector magnitude = half.and(0x7FFF);
        IntVector sign = half.and(0x8000).lanewise(LSHL, 16);
        IntVector rebiased = magnitude.lanewise(LSHL, 13).add((127 - 15) << 23);
        VectorMask<Integer> infOrNan = magnitude.compare(VectorOperators.GE, 0x7C00);
        rebiased = rebiased.add((128 - 16) << 23, infOrNan);
        VectorMask<Integer> subnormal = magnitude.compare(VectorOperators.LT, 0x0400);
        FloatVector small = ((FloatVector) magnitude.convert(VectorOperators.I2F, 0)).mul(0x1p-24f);
        IntVector bits = rebiased.blend(small.reinterpretAsInts(), subnormal);
        return bits.or(sign).reinterpretAsFloats();
    }

    // ---- whole rows ----

    /** Elements of a row of {@code n} that are in full pair-split groups. */
    static int fullGroups(int n) {
        return n - n % GROUP;
    }

    /** Whether weights of this type are widened in pair-split order. */
    static boolean pairSplit(DType dtype) {
        return dtype != DType.F32;
    }

    /**
     * Widens {@code count} weights of one row, starting at byte {@code offset} of {@code w}, into
     * {@code dst[dstOff ..]}. {@code count} must be a multiple of {@link #GROUP} unless it reaches the end of the
     * row, so that groups are never cut; two-byte types come out in pair-split order.
     */
    static void widen(MemorySegment w, long offset, DType dtype, int count, float[] dst, int dstOff) {
        int full = dtype == DType.F32 ? 0 : fullGroups(count);
        switch (dtype) {
            case BF16 -> {
                for (int k = 0; k < full; k += GROUP) {
                    IntVector pairs = IntVector.fromMemorySegment(I, w, offset + 2L * k, LE);
                    bf16Even(pairs).intoArray(dst, dstOff + k);
                    bf16Odd(pairs).intoArray(dst, dstOff + k + L);
                }
            }
            case F16 -> {
                for (int k = 0; k < full; k += GROUP) {
                    IntVector pairs = IntVector.fromMemorySegment(I, w, offset + 2L * k, LE);
                    f16Even(pairs).intoArray(dst, dstOff + k);
                    f16Odd(pairs).intoArray(dst, dstOff + k + L);
                }
            }
            case F32 -> MemorySegment.copy(w, FLOAT_LE, offset, dst, dstOff, count);
        }
        for (int k = full; k < count && dtype != DType.F32; k++) {
            dst[dstOff + k] = scalar(w, offset + 2L * k, dtype);
        }
    }

    /** One weight at byte {@code offset}, widened. */
    static float scalar(MemorySegment w, long offset, DType dtype) {
        return switch (dtype) {
            case BF16 -> DType.bf16ToFloat(w.get(SHORT_LE, offset));
            case F16 -> Float.float16ToFloat(w.get(SHORT_LE, offset));
            case F32 -> w.get(FLOAT_LE, offset);
        };
    }

    /** Where element {@code k} of a row of {@code n} sits in pair-split order. */
    static int pairSplitPosition(int k, int n) {
        if (k >= fullGroups(n)) {
            return k;
        }
        int inGroup = k % GROUP;
        return k - inGroup + (inGroup & 1) * L + (inGroup >> 1);
    }

    /** Copies {@code n} activations to {@code dst}, permuted into pair-split order. */
    static void pairSplit(float[] src, int srcOff, float[] dst, int dstOff, int n) {
        int full = fullGroups(n);
        for (int g = 0; g < full; g += GROUP) {
            for (int j = 0; j < L; j++) {
                dst[dstOff + g + j] = src[srcOff + g + 2 * j];
                dst[dstOff + g + L + j] = src[srcOff + g + 2 * j + 1];
            }
        }
        System.arraycopy(src, srcOff + full, dst, dstOff + full, n - full);
    }
}
