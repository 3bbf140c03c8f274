package io.jemma.attention;

import io.jemma.backend.Tensor;

/**
 * Causal attention over a KV cache. For every chunk of the batch it stores the new keys and values at
 * their positions (unless the layer only reads a shared cache), then lets each new query attend to the
 * visible cached positions of its own sequence, the new ones included.
 */
public interface AttentionBackend {

    /**
     * @param q   {@code [tokens, heads * headDim]}, normalized and rotated
     * @param k   {@code [tokens, kvHeads * headDim]} new keys (ignored when the layer does not write)
     * @param v   {@code [tokens, kvHeads * headDim]} new values (likewise)
     * @param out {@code [tokens, heads * headDim]}
     */
    void attend(AttentionLayer layer, ForwardBatch batch, Tensor q, Tensor k, Tensor v, Tensor out);

    /** Forgets a sequence's cached keys and values, freeing their memory. */
    void release(int sequenceId);

    /** Drops cached positions at and after {@code length} (speculative rollback, prompt edits). */
    void truncate(int sequenceId, int length);

    /** A short name for logs and metrics. */
    String name();
}
