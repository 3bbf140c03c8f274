package io.jemma.backend.cuda;

import io.jemma.backend.DType;
import io.jemma.backend.Weight;
import java.util.Arrays;

/**
 * A weight in device memory, in the form the kernels read: vectors (rank 1: norm weights, scales) as
 * fp32, matrices and stacks of matrices (rank 2+: projections, embeddings, experts) as bf16, whatever
 * the checkpoint's dtype (f32 and f16 are rounded to bf16 on upload, to nearest even).
 */
record CudaWeight(String name, DType dtype, long[] shape, DeviceBuffer buffer) implements Weight {

    CudaWeight {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    long address() {
        return buffer.address();
    }

    long numel() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    static CudaWeight of(Weight w) {
        if (w instanceof CudaWeight c) {
            return c;
        }
        throw new IllegalArgumentException("not a CUDA weight: " + w);
    }

    /** The device dtype for a checkpoint tensor of this rank. */
    static DType deviceType(int rank) {
        return rank <= 1 ? DType.F32 : DType.BF16;
    }

    @Override
    public String toString() {
        return "CudaWeight[" + name + " " + dtype + " " + Arrays.toString(shape) + "]";
    }
}
