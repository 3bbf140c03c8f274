package io.jemma.model;

import io.jemma.backend.Weight;

/**
 * One decoder layer's weights as the backend holds them. Absent parts are null: k/v projections and
 * their norms in KV-shared layers, v in k_eq_v layers, the MoE block in dense models, PLE in models
 * without per-layer inputs.
 */
record LayerWeights(
        Weight inputNorm,            // [hidden]
        Weight q,                    // [heads * headDim, hidden]
        Weight k,                    // [kvHeads * headDim, hidden]
        Weight v,                    // [kvHeads * headDim, hidden]
        Weight qNorm,                // [headDim]
        Weight kNorm,                // [headDim]
        Weight o,                    // [hidden, heads * headDim]
        Weight postAttentionNorm,    // [hidden]
        Weight preFeedforwardNorm,   // [hidden]
        Weight gate,                 // [mlpWidth, hidden]
        Weight up,                   // [mlpWidth, hidden]
        Weight down,                 // [hidden, mlpWidth]
        Weight postFeedforwardNorm,  // [hidden]
        float layerScalar,
        Moe moe,
        PerLayerInput perLayerInput) {

    /** The routed-experts half of a 26B-A4B layer. */
    record Moe(
            Weight routerScale,          // [hidden]
            Weight routerProjection,     // [experts, hidden]
            Weight perExpertScale,       // [experts]
            Weight gateUp,               // [experts, 2 * moeInter, hidden]
            Weight down,                 // [experts, hidden, moeInter]
            Weight preFeedforwardNorm2,  // [hidden]
            Weight postFeedforwardNorm1, // [hidden]
            Weight postFeedforwardNorm2) { // [hidden]
    }

    /** The per-layer-embedding (PLE) residual of E2B/E4B layers. */
    record PerLayerInput(
            Weight gate,        // [pleDim, hidden]
            Weight projection,  // [hidden, pleDim]
            Weight postNorm) {  // [hidden]
    }
}
