package io.jemma.backend;

/**
 * What the fused per-head normalization after the attention projections does, chosen per layer from the
 * config. Each mode normalizes every (token, head) of its inputs with one rms, applies the weights and
 * rotates by RoPE where Gemma 4 does.
 */
public enum QkvNormMode {
    /** KV-shared layers: only queries are computed; K and V come from the source layer's cache. */
    Q_ONLY,
    /**
     * k_eq_v full layers: there is no v projection. The raw k projection is both inputs; one rms per
     * (token, head) gives n, then K = rope(n * k_w) and V = n.
     */
    QK_EQ_V,
    /** Every other layer: Q and K with their weights and RoPE, V normalized without a weight. */
    QKV;
}
