package io.jemma.model.config;

import java.util.ArrayList;
import java.util.List;

/**
 * Checkpoint tensor names of the Gemma 4 text decoder, following transformers' module tree. Parameters of
 * nn.Linear and RMSNorm end in {@code .weight}; {@code layer_scalar} (a buffer), the router's {@code scale}
 * and {@code per_expert_scale}, and the experts' {@code gate_up_proj} / {@code down_proj} (bare
 * nn.Parameters) have no suffix.
 *
 * @param prefix the decoder's prefix: {@code model.language_model.} (gemma4) or {@code model.} (gemma4_text)
 */
public record WeightNames(String prefix) {

    /** The untied output projection lives outside the decoder, on the ForCausalLM / ForConditionalGeneration. */
    public static final String LM_HEAD = "lm_head.weight";

    public static WeightNames of(TextConfig config) {
        return new WeightNames(config.tensorPrefix());
    }

    // ---- globals

    /** [vocab_size, hidden_size] */
    public String embedTokens() {
        return prefix + "embed_tokens.weight";
    }

    /** Final RMSNorm weight, [hidden_size]. */
    public String finalNorm() {
        return prefix + "norm.weight";
    }

    /** Per-layer embeddings, [vocab_size_per_layer_input, num_layers * hidden_size_per_layer_input]. */
    public String embedTokensPerLayer() {
        return prefix + "embed_tokens_per_layer.weight";
    }

    /** [num_layers * hidden_size_per_layer_input, hidden_size] */
    public String perLayerModelProjection() {
        return prefix + "per_layer_model_projection.weight";
    }

    /** [hidden_size_per_layer_input] */
    public String perLayerProjectionNorm() {
        return prefix + "per_layer_projection_norm.weight";
    }

    /** [vocab_size, hidden_size], only when the embeddings are not tied. */
    public String lmHead() {
        return LM_HEAD;
    }

    // ---- attention of layer i

    public String qProj(int layer) {
        return attn(layer, "q_proj.weight");
    }

    public String kProj(int layer) {
        return attn(layer, "k_proj.weight");
    }

    public String vProj(int layer) {
        return attn(layer, "v_proj.weight");
    }

    public String oProj(int layer) {
        return attn(layer, "o_proj.weight");
    }

    public String qNorm(int layer) {
        return attn(layer, "q_norm.weight");
    }

    public String kNorm(int layer) {
        return attn(layer, "k_norm.weight");
    }

    // ---- norms of layer i

    public String inputLayernorm(int layer) {
        return layer(layer, "input_layernorm.weight");
    }

    public String postAttentionLayernorm(int layer) {
        return layer(layer, "post_attention_layernorm.weight");
    }

    public String preFeedforwardLayernorm(int layer) {
        return layer(layer, "pre_feedforward_layernorm.weight");
    }

    public String postFeedforwardLayernorm(int layer) {
        return layer(layer, "post_feedforward_layernorm.weight");
    }

    // ---- dense MLP of layer i

    public String gateProj(int layer) {
        return layer(layer, "mlp.gate_proj.weight");
    }

    public String upProj(int layer) {
        return layer(layer, "mlp.up_proj.weight");
    }

    public String downProj(int layer) {
        return layer(layer, "mlp.down_proj.weight");
    }

    /** The per-layer output scale, a buffer of shape [1]. */
    public String layerScalar(int layer) {
        return layer(layer, "layer_scalar");
    }

    // ---- per-layer embeddings of layer i

    public String perLayerInputGate(int layer) {
        return layer(layer, "per_layer_input_gate.weight");
    }

    public String perLayerProjection(int layer) {
        return layer(layer, "per_layer_projection.weight");
    }

    public String postPerLayerInputNorm(int layer) {
        return layer(layer, "post_per_layer_input_norm.weight");
    }

    // ---- mixture of experts of layer i

    public String routerProj(int layer) {
        return layer(layer, "router.proj.weight");
    }

    public String routerScale(int layer) {
        return layer(layer, "router.scale");
    }

    public String routerPerExpertScale(int layer) {
        return layer(layer, "router.per_expert_scale");
    }

    /** [num_experts, 2 * moe_intermediate_size, hidden_size]: gate rows first, then up rows. */
    public String expertsGateUpProj(int layer) {
        return layer(layer, "experts.gate_up_proj");
    }

    /** [num_experts, hidden_size, moe_intermediate_size] */
    public String expertsDownProj(int layer) {
        return layer(layer, "experts.down_proj");
    }

    public String preFeedforwardLayernorm2(int layer) {
        return layer(layer, "pre_feedforward_layernorm_2.weight");
    }

    public String postFeedforwardLayernorm1(int layer) {
        return layer(layer, "post_feedforward_layernorm_1.weight");
    }

    public String postFeedforwardLayernorm2(int layer) {
        return layer(layer, "post_feedforward_layernorm_2.weight");
    }

    private String layer(int layer, String suffix) {
        return prefix + "layers." + layer + "." + suffix;
    }

    private String attn(int layer, String suffix) {
        return layer(layer, "self_attn." + suffix);
    }

    /**
     * Every tensor the text decoder of {@code config} reads, with its shape: what a checkpoint must hold
     * (it may hold more, e.g. vision towers, or k/v projections of KV-shared layers, which transformers
     * ignores on load), and what a dummy-weight writer must produce.
     */
    public static List<ExpectedTensor> expectedTensors(TextConfig config) {
        WeightNames n = of(config);
        long hidden = config.hiddenSize();
        long ple = config.hiddenSizePerLayerInput();
        long layers = config.numHiddenLayers();
        List<ExpectedTensor> out = new ArrayList<>();
        out.add(t(n.embedTokens(), config.vocabSize(), hidden));
        if (config.hasPerLayerEmbeddings()) {
            out.add(t(n.embedTokensPerLayer(), config.vocabSizePerLayerInput(), layers * ple));
            out.add(t(n.perLayerModelProjection(), layers * ple, hidden));
            out.add(t(n.perLayerProjectionNorm(), ple));
        }
        for (LayerSpec l : config.layers()) {
            int i = l.index();
            out.add(t(n.qProj(i), l.qDim(), hidden));
            if (l.hasKProj()) {
                out.add(t(n.kProj(i), l.kvDim(), hidden));
            }
            if (l.hasVProj()) {
                out.add(t(n.vProj(i), l.kvDim(), hidden));
            }
            out.add(t(n.oProj(i), hidden, l.qDim()));
            out.add(t(n.qNorm(i), l.headDim()));
            if (l.hasKProj()) {
                out.add(t(n.kNorm(i), l.headDim()));
            }
            out.add(t(n.inputLayernorm(i), hidden));
            out.add(t(n.postAttentionLayernorm(i), hidden));
            out.add(t(n.preFeedforwardLayernorm(i), hidden));
            out.add(t(n.postFeedforwardLayernorm(i), hidden));
            out.add(t(n.gateProj(i), l.mlpWidth(), hidden));
            out.add(t(n.upProj(i), l.mlpWidth(), hidden));
            out.add(t(n.downProj(i), hidden, l.mlpWidth()));
            if (l.moe()) {
                long experts = config.numExperts().orElseThrow();
                long width = config.moeIntermediateSize().orElseThrow();
                out.add(t(n.routerProj(i), experts, hidden));
                out.add(t(n.routerScale(i), hidden));
                out.add(t(n.routerPerExpertScale(i), experts));
                out.add(t(n.expertsGateUpProj(i), experts, 2 * width, hidden));
                out.add(t(n.expertsDownProj(i), experts, hidden, width));
                out.add(t(n.preFeedforwardLayernorm2(i), hidden));
                out.add(t(n.postFeedforwardLayernorm1(i), hidden));
                out.add(t(n.postFeedforwardLayernorm2(i), hidden));
            }
            if (config.hasPerLayerEmbeddings()) {
                out.add(t(n.perLayerInputGate(i), ple, hidden));
                out.add(t(n.perLayerProjection(i), hidden, ple));
                out.add(t(n.postPerLayerInputNorm(i), hidden));
            }
            out.add(t(n.layerScalar(i), 1));
        }
        out.add(t(n.finalNorm(), hidden));
        if (!config.tieWordEmbeddings()) {
            out.add(t(n.lmHead(), config.vocabSize(), hidden));
        }
        return List.copyOf(out);
    }

    private static ExpectedTensor t(String name, long... shape) {
        return new ExpectedTensor(name, shape);
    }
}
