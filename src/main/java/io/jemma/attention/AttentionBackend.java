package io.jemma.attention;

import io.jemma.backend.Tensor;

/**
 * Causal attention over a paged KV cache. For every chunk of the batch it stores the new keys and values
 * in the slots the page tables give their positions (unless the layer only reads a shared cache), then
 * lets each new query attend to the visible positions of its own sequence, the new ones included. Which
 * pages a sequence holds is the engine's business ({@link KvPages}); the backend owns the buffers.
 */
public interface AttentionBackend {

    /**
     * @param q   {@code [tokens, heads * headDim]}, normalized and rotated
     * @param k   {@code [tokens, kvHeads * headDim]} new keys (ignored when the layer does not write); null when
     *            they were already stored through this step's {@link #kvWriteTarget}
     * @param v   {@code [tokens, kvHeads * headDim]} new values (likewise)
     * @param out {@code [tokens, heads * headDim]}
     */
    void attend(AttentionLayer layer, ForwardBatch batch, KvPages pages, Tensor q, Tensor k, Tensor v, Tensor out);

    /**
     * Where the fused QKV norm may store this step's new keys and values of {@code layer} (a layer that writes
     * KV) instead of {@link #attend} storing them, or null when this backend stores them itself. A caller that
     * had them stored through the target passes null k and v to attend for the layer in this step.
     */
    default KvWriteTarget kvWriteTarget(AttentionLayer layer, ForwardBatch batch, KvPages pages) {
        return null;
    }

    /**
     * Called once per forward pass, before the first layer, after the KV pages of the batch's new
     * positions were taken: a GPU backend copies the step's page tables and chunk layout to the device
     * here (into buffers that keep their addresses, so captured CUDA graphs replay with new contents),
     * instead of once per layer.
     */
    default void beginStep(ForwardBatch batch, KvPages pages) {
    }

    /**
     * Copies one sequence's cached keys and values from positions {@code from[i]} to positions {@code to[i]}, in
     * order, in every layer that writes KV (both pools). Speculative decoding calls it after verifying a draft
     * tree: the accepted path's entries were stored at {@code start + tree index} and move to their final
     * positions {@code start + depth} (always to a lower position, so in-order copies never read an overwritten
     * entry). The pages of both positions are held by the sequence.
     */
    default void copyKv(KvPages pages, int sequenceId, int[] from, int[] to) {
        throw new UnsupportedOperationException(name() + " attention cannot move KV entries (speculative trees)");
    }

    /**
     * After {@link #beginStep}: a summary of the launch configuration this step's attention will use (grid
     * sizes, split counts, which kernels), everything the host decides per step that a recorded CUDA graph
     * freezes. A graph recorded under one key replays only for steps with the same key; the data the
     * kernels read (page tables, lengths) may differ. 0 for a backend whose launches never vary.
     */
    default long graphKey() {
        return 0;
    }

    /** A short name for logs and metrics. */
    String name();
}
