package io.jemma.backend.cpu;

import io.jemma.backend.DType;
import io.jemma.backend.HostTensor;
import io.jemma.backend.Weight;

/**
 * A weight on the CPU: the checkpoint's mapped bytes, used in place. Small vectors (norm weights,
 * scales) are also widened once to fp32, since every token reads them.
 */
record CpuWeight(HostTensor tensor, float[] small) implements Weight {

    /** Weights up to this many elements are kept widened on the heap as well. */
    private static final long SMALL = 1 << 16;

    static CpuWeight of(HostTensor t) {
        return new CpuWeight(t, t.numel() <= SMALL ? t.toFloatArray() : null);
    }

    static CpuWeight of(Weight w) {
        if (w instanceof CpuWeight c) {
            return c;
        }
        throw new IllegalArgumentException("not a CPU weight: " + w);
    }

    /** The widened values of a small weight (norm weights, scales). */
    float[] values() {
        if (small == null) {
            throw new IllegalStateException(tensor.name() + " is too large to widen");
        }
        return small;
    }

    @Override
    public String name() {
        return tensor.name();
    }

    @Override
    public DType dtype() {
        return tensor.dtype();
    }

    @Override
    public long[] shape() {
        return tensor.shape();
    }
}
