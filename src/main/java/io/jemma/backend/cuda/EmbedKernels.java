package io.jemma.backend.cuda;

/** Launches embed.cu: rows of a bf16 embedding table, times a scale, into fp32 activations. */
final class EmbedKernels {
    private static final int THREADS = 256;
    private final CudaContext context;

    EmbedKernels(CudaContext context) {
        this.context = context;
    }

    /** out[r] = table[ids[r]] * scale; table bf16 [vocab, width], ids a device address of out.rows() ints. */
    void embed(CudaWeight table, long ids, float scale, CudaTensor out) {
        int width = out.cols();
        context.launch("jemma_embed", Grid.ceilDiv(Grid.ceilDiv(width, 2), THREADS), Math.min(out.rows(), Grid.MAX_Y),
                THREADS, new KernelArgs().ptr(table.address()).i32(width).ptr(ids).f32(scale)
                        .ptr(out.address()).i64(out.rowStride()).i32(out.rows()));
    }
}
