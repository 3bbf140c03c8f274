package io.jemma.model.config;

import java.util.OptionalInt;

/**
 * One layer's entry of transformers' {@code per_layer_config}: the attention geometry that differs from the
 * global settings. Newer transformers versions write these in {@code config.json}; for older files (flat
 * {@code global_head_dim} / {@code num_global_key_value_heads}) they are synthesized for the full-attention
 * layers exactly as {@code Gemma4TextConfig.__post_init__} does.
 */
public record LayerOverride(OptionalInt headDim, OptionalInt numKeyValueHeads) {

    public static final LayerOverride NONE = new LayerOverride(OptionalInt.empty(), OptionalInt.empty());

    public boolean isEmpty() {
        return headDim.isEmpty() && numKeyValueHeads.isEmpty();
    }
}
