package io.jemma.attention;

/**
 * What the attention of one decoder layer needs to know.
 *
 * @param layer the decoder layer
 * @param kvLayer the layer whose KV cache it reads (itself, or the source of a KV-shared layer)
 * @param writesKv false for KV-shared layers, which only read
 * @param heads query heads
 * @param kvHeads key/value heads (queries of a group share one)
 * @param headDim width of one head
 * @param slidingWindow attend to the last this many positions (the current one included); 0 = all
 * @param scale factor on q.k (Gemma 4: 1.0, the q norm replaces 1/sqrt(d))
 */
public record AttentionLayer(int layer, int kvLayer, boolean writesKv, int heads, int kvHeads, int headDim,
                             int slidingWindow, float scale) {
    public AttentionLayer {
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("layer " + layer + ": " + heads + " heads over " + kvHeads + " kv heads");
        }
    }

    public int groupSize() {
        return heads / kvHeads;
    }

    /** The first position a query at {@code position} may see. */
    public int firstVisible(int position) {
        return slidingWindow > 0 ? Math.max(0, position - slidingWindow + 1) : 0;
    }
}
