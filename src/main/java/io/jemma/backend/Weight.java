package io.jemma.backend;

/** A model weight as a backend holds it (mapped host memory on the CPU, device memory on CUDA). */
public interface Weight {
    String name();

    DType dtype();

    /** Dimensions, outermost first: {@code [out, in]} for projections, {@code [n]} for norm weights. */
    long[] shape();

    default long dim(int i) {
        return shape()[i];
    }
}
