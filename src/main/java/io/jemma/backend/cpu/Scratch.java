package io.jemma.backend.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Per-thread work buffers of the kernels, grown on demand and kept, so that steady-state matmuls allocate nothing
 * large. Worker threads use {@link #panel}, {@link #tileSums} and the widened rows; the calling thread also owns
 * the packed activations ({@link #packed}) that its workers read during a call.
 */
final class Scratch {

    private static final ThreadLocal<Scratch> LOCAL = ThreadLocal.withInitial(Scratch::new);

    private float[] panel = new float[0];
    private float[] tileSums = new float[0];
    private float[] packed = new float[0];
    private float[] widened = new float[0];
    private MemorySegment widenedSegment = MemorySegment.NULL;

    static Scratch get() {
        return LOCAL.get();
    }

    /** Widened W block of the prefill kernels. */
    float[] panel(int size) {
        return panel.length >= size ? panel : (panel = new float[size]);
    }

    /** Per-task output accumulators of the prefill kernels. */
    float[] tileSums(int size) {
        return tileSums.length >= size ? tileSums : (tileSums = new float[size]);
    }

    /** Activations packed for a call (transposed for prefill, pair-split for decode). */
    float[] packed(int size) {
        return packed.length >= size ? packed : (packed = new float[size]);
    }

    /** Rows of f16 weights widened to fp32 (decode). */
    float[] widened(int size) {
        return widened.length >= size ? widened : (widened = new float[size]);
    }

    /** Native copy of {@link #widened} rows for the fp32 kernels, which read weights from segments. */
    MemorySegment widenedSegment(long bytes) {
        if (widenedSegment.byteSize() < bytes) {
            widenedSegment = Arena.ofAuto().allocate(bytes, 64);
        }
        return widenedSegment;
    }
}
