package io.jemma.backend.cuda;

import io.jemma.attention.AttentionLayer;

/** What both GPU attention backends check of a call before launching anything. */
final class AttentionArguments {
    private AttentionArguments() {
    }

    /** q and out must be {@code [tokens, heads * headDim]} for the layer. */
    static void check(AttentionLayer layer, int tokens, CudaTensor q, CudaTensor out) {
        int width = layer.heads() * layer.headDim();
        if (q.rows() != tokens || out.rows() != tokens || q.cols() != width || out.cols() != width) {
            throw new IllegalArgumentException("attention of " + tokens + " rows, " + layer.heads() + " heads x "
                    + layer.headDim() + ": q " + q + ", out " + out);
        }
    }
}
