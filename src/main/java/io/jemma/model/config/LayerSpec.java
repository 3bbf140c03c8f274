package io.jemma.model.config;

/**
 * Everything about decoder layer {@code index} that follows from the config, resolved once so that the
 * model code never re-derives it (and never gets one of the special cases wrong in a second place).
 *
 * @param index         layer number, from 0
 * @param attentionType sliding window or full
 * @param headDim       dimensions per head: {@code head_dim} for sliding layers, the global head dim for
 *                      full layers (from {@code per_layer_config}, or {@code global_head_dim} when set)
 * @param numHeads      query heads
 * @param numKvHeads    key/value heads ({@code num_global_key_value_heads} for full layers of k_eq_v models)
 * @param kEqV          full layer of an {@code attention_k_eq_v} model: no v_proj, V is the raw k_proj output
 *                      (normalized without weight, not rotated)
 * @param kvShared      one of the last {@code num_kv_shared_layers} layers: no k/v projections or norms of its
 *                      own, it attends to the KV of {@code kvSourceLayer} and writes no KV cache
 * @param kvSourceLayer whose KV this layer attends to: for shared layers the last non-shared layer of the
 *                      same attention type, otherwise the layer itself
 * @param slidingWindow how many positions a sliding layer sees (the current one included); 0 for full layers
 * @param mlpWidth      the dense MLP's intermediate size ({@code intermediate_size}, doubled on KV-shared
 *                      layers of {@code use_double_wide_mlp} models)
 * @param rope          the RoPE of this layer's type
 * @param moe           the layer has routed experts next to its dense MLP
 */
public record LayerSpec(
        int index,
        AttentionType attentionType,
        int headDim,
        int numHeads,
        int numKvHeads,
        boolean kEqV,
        boolean kvShared,
        int kvSourceLayer,
        int slidingWindow,
        int mlpWidth,
        RopeSpec rope,
        boolean moe) {

    public boolean isSliding() {
        return attentionType == AttentionType.SLIDING;
    }

    public boolean isFull() {
        return attentionType == AttentionType.FULL;
    }

    /** Output width of q_proj: {@code numHeads * headDim}. */
    public int qDim() {
        return numHeads * headDim;
    }

    /** Output width of k_proj (and v_proj): {@code numKvHeads * headDim}. */
    public int kvDim() {
        return numKvHeads * headDim;
    }

    /** Query heads per KV head. */
    public int kvGroups() {
        return numHeads / numKvHeads;
    }

    /** The layer has k_proj and k_norm (false for KV-shared layers). */
    public boolean hasKProj() {
        return !kvShared;
    }

    /** The layer has v_proj (false for KV-shared layers and for k_eq_v full layers). */
    public boolean hasVProj() {
        return !kvShared && !kEqV;
    }

    /** {@code headDim / 2} inverse frequencies of this layer's RoPE. */
    public float[] inverseFrequencies() {
        return rope.inverseFrequencies(headDim);
    }
}
