package io.jemma.backend;

/**
 * An fp32 activation matrix {@code [rows, cols]} in a backend's memory (the heap for the CPU backend,
 * device memory for CUDA). A tensor may be a column view of a wider one (the q, k and v slices of a
 * fused projection, one layer's slice of the per-layer inputs): rows are then {@code rowStride()}
 * elements apart.
 */
public interface Tensor {
    int rows();

    int cols();

    /** Elements between the starts of two consecutive rows (== cols() for a contiguous tensor). */
    int rowStride();

    /** Columns {@code [from, from + count)} of every row, sharing this tensor's memory. */
    Tensor columns(int from, int count);

    default boolean contiguous() {
        return rowStride() == cols();
    }
}
