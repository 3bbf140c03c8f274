package io.jemma.model.config;

import io.jemma.backend.DType;

import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.TreeMap;

/**
 * The Gemma 4 text decoder's configuration: the fields of transformers' {@code Gemma4TextConfig} that the
 * decoder uses, with transformers' defaults for those missing from {@code config.json}, plus the per-layer
 * values derived from them ({@link #layers()}). Load one with {@link #load(Path)}.
 *
 * <p>Every instance is valid: the constructor checks sizes, divisibility and consistency, and derives
 * {@code layers} (pass {@code null}; a non-null list must equal the derived one).
 *
 * @param modelType              gemma4 (decoder under text_config) or gemma4_text
 * @param vocabSize              rows of embed_tokens
 * @param hiddenSize             the residual stream's width
 * @param intermediateSize       the dense MLP's width (see {@link LayerSpec#mlpWidth()} for the per-layer value)
 * @param numHiddenLayers        decoder layers
 * @param numAttentionHeads      query heads
 * @param numKeyValueHeads       KV heads unless a layer overrides them
 * @param headDim                head dim unless a layer overrides it (the sliding layers' head dim)
 * @param globalHeadDim          {@code global_head_dim} as written (transformers' default 512; 0 when the file
 *                               says null). Only used to synthesize {@code perLayerConfig} for old-style files.
 * @param numGlobalKeyValueHeads {@code num_global_key_value_heads} as written; likewise only for synthesis
 * @param perLayerConfig         layer index -> attention geometry override, as transformers 5.17 holds it
 * @param hiddenActivation       {@code hidden_activation} (gelu_pytorch_tanh)
 * @param maxPositionEmbeddings  the context the model was trained for
 * @param rmsNormEps             epsilon of every RMSNorm
 * @param bosTokenId             {@code bos_token_id}
 * @param padTokenId             {@code pad_token_id}
 * @param eosTokenIds            {@code eos_token_id} of config.json (an int or a list there)
 * @param generationEosTokenIds  {@code eos_token_id} of generation_config.json; empty when absent
 * @param tieWordEmbeddings      the output projection is embed_tokens (else a separate lm_head.weight)
 * @param ropeParameters         RoPE per attention type used by the layers
 * @param attentionBias          q/k/v/o projections have biases (false for every released Gemma 4)
 * @param slidingWindow          positions a sliding layer sees
 * @param layerTypes             attention type per layer (the last is always full)
 * @param finalLogitSoftcapping  {@code cap * tanh(logits / cap)} when present
 * @param vocabSizePerLayerInput rows of embed_tokens_per_layer
 * @param hiddenSizePerLayerInput per-layer embedding width; 0 = the model has no per-layer embeddings
 * @param attentionKEqV          full layers have no v_proj (V = K before norm and RoPE)
 * @param numKvSharedLayers      the last this many layers reuse earlier layers' KV
 * @param enableMoeBlock         every layer has routed experts besides its dense MLP
 * @param useDoubleWideMlp       KV-shared layers have an MLP twice as wide
 * @param numExperts             experts per MoE layer
 * @param topKExperts            experts chosen per token
 * @param moeIntermediateSize    width of each expert's MLP
 * @param dtype                  {@code dtype} / {@code torch_dtype} as written (e.g. "bfloat16")
 * @param layers                 derived per-layer values, index = layer
 */
public record TextConfig(
        ModelType modelType,
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numKeyValueHeads,
        int headDim,
        int globalHeadDim,
        OptionalInt numGlobalKeyValueHeads,
        Map<Integer, LayerOverride> perLayerConfig,
        String hiddenActivation,
        int maxPositionEmbeddings,
        double rmsNormEps,
        OptionalInt bosTokenId,
        OptionalInt padTokenId,
        List<Integer> eosTokenIds,
        List<Integer> generationEosTokenIds,
        boolean tieWordEmbeddings,
        Map<AttentionType, RopeSpec> ropeParameters,
        boolean attentionBias,
        int slidingWindow,
        List<AttentionType> layerTypes,
        OptionalDouble finalLogitSoftcapping,
        int vocabSizePerLayerInput,
        int hiddenSizePerLayerInput,
        boolean attentionKEqV,
        int numKvSharedLayers,
        boolean enableMoeBlock,
        boolean useDoubleWideMlp,
        OptionalInt numExperts,
        OptionalInt topKExperts,
        OptionalInt moeIntermediateSize,
        Optional<String> dtype,
        List<LayerSpec> layers) {

    public TextConfig {
        perLayerConfig = perLayerConfig == null ? Map.of() : unmodifiableSorted(perLayerConfig);
        ropeParameters = enumMap(ropeParameters);
        eosTokenIds = List.copyOf(eosTokenIds);
        generationEosTokenIds = List.copyOf(generationEosTokenIds);
        layerTypes = List.copyOf(layerTypes);
        validateGlobals(modelType, vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, globalHeadDim, numGlobalKeyValueHeads, maxPositionEmbeddings,
                rmsNormEps, eosTokenIds, generationEosTokenIds, slidingWindow, layerTypes, finalLogitSoftcapping,
                vocabSizePerLayerInput, hiddenSizePerLayerInput, numKvSharedLayers, enableMoeBlock, numExperts,
                topKExperts, moeIntermediateSize, perLayerConfig, ropeParameters);
        List<LayerSpec> derived = LayerDerivation.derive(numHiddenLayers, layerTypes, perLayerConfig, headDim,
                numAttentionHeads, numKeyValueHeads, attentionKEqV, numKvSharedLayers, slidingWindow,
                intermediateSize, useDoubleWideMlp, ropeParameters, enableMoeBlock);
        if (layers != null && !layers.equals(derived)) {
            throw new IllegalArgumentException("layers do not match the ones the config derives");
        }
        layers = derived;
    }

    /** Reads {@code config.json} and, when present, {@code generation_config.json} from a model directory. */
    public static TextConfig load(Path modelDir) {
        return ConfigParser.load(modelDir);
    }

    /** Parses the text of a config.json (and of a generation_config.json, or null). */
    public static TextConfig parse(String configJson, String generationConfigJson) {
        return ConfigParser.parse(configJson, generationConfigJson, "config.json");
    }

    public LayerSpec layer(int index) {
        return layers.get(index);
    }

    /** The first KV-shared layer ({@code numHiddenLayers} when none is shared). */
    public int firstKvSharedLayer() {
        return numHiddenLayers - numKvSharedLayers;
    }

    /** What the decoder's tensor names start with. */
    public String tensorPrefix() {
        return modelType.tensorPrefix();
    }

    /** The model has per-layer embeddings (PLE): transformers tests {@code if hidden_size_per_layer_input:}. */
    public boolean hasPerLayerEmbeddings() {
        return hiddenSizePerLayerInput > 0;
    }

    /** The weight dtype the config declares, when it is one of ours. */
    public Optional<DType> weightDType() {
        return dtype.flatMap(TextConfig::dtypeOf);
    }

    /**
     * {@code sqrt(hidden_size)} as the embedding is scaled by: transformers keeps the scale as an fp32 buffer
     * and casts it to the embedding weight's dtype before multiplying, so in bf16 sqrt(3072) = 55.4256
     * becomes 55.5. Pass the dtype of the actual embed_tokens tensor.
     */
    public float embeddingScale(DType weightDType) {
        return weightDType.round((float) Math.sqrt(hiddenSize));
    }

    /** {@link #embeddingScale(DType)} for the declared dtype, bf16 when the config declares none. */
    public float embeddingScale() {
        return embeddingScale(weightDType().orElse(DType.BF16));
    }

    /** {@code sqrt(hidden_size_per_layer_input)} rounded like {@link #embeddingScale(DType)}. */
    public float perLayerEmbeddingScale(DType weightDType) {
        return weightDType.round((float) Math.sqrt(hiddenSizePerLayerInput));
    }

    public float perLayerEmbeddingScale() {
        return perLayerEmbeddingScale(weightDType().orElse(DType.BF16));
    }

    /** Token ids that end generation: generation_config.json's when it has some, else config.json's. */
    public List<Integer> stopTokenIds() {
        return generationEosTokenIds.isEmpty() ? eosTokenIds : generationEosTokenIds;
    }

    static Optional<DType> dtypeOf(String name) {
        return switch (name) {
            case "bfloat16" -> Optional.of(DType.BF16);
            case "float16", "half" -> Optional.of(DType.F16);
            case "float32", "float" -> Optional.of(DType.F32);
            default -> Optional.empty();
        };
    }

    private static Map<AttentionType, RopeSpec> enumMap(Map<AttentionType, RopeSpec> map) {
        EnumMap<AttentionType, RopeSpec> copy = new EnumMap<>(AttentionType.class);
        copy.putAll(map);
        return java.util.Collections.unmodifiableMap(copy);
    }

    private static Map<Integer, LayerOverride> unmodifiableSorted(Map<Integer, LayerOverride> map) {
        return java.util.Collections.unmodifiableMap(new TreeMap<>(map));
    }

    private static void validateGlobals(ModelType modelType, int vocabSize, int hiddenSize, int intermediateSize,
                                        int numHiddenLayers, int numAttentionHeads, int numKeyValueHeads,
                                        int headDim, int globalHeadDim, OptionalInt numGlobalKeyValueHeads,
                                        int maxPositionEmbeddings, double rmsNormEps, List<Integer> eos,
                                        List<Integer> generationEos, int slidingWindow,
                                        List<AttentionType> layerTypes, OptionalDouble softcap,
                                        int vocabSizePerLayerInput, int hiddenSizePerLayerInput,
                                        int numKvSharedLayers, boolean moe, OptionalInt numExperts,
                                        OptionalInt topK, OptionalInt moeIntermediateSize,
                                        Map<Integer, LayerOverride> perLayerConfig,
                                        Map<AttentionType, RopeSpec> ropeParameters) {
        if (modelType == null) {
            throw new ConfigException("model_type is missing");
        }
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numHiddenLayers);
        positive("num_attention_heads", numAttentionHeads);
        positive("num_key_value_heads", numKeyValueHeads);
        positive("head_dim", headDim);
        positive("max_position_embeddings", maxPositionEmbeddings);
        if (globalHeadDim < 0) {
            throw new ConfigException("global_head_dim must not be negative, got " + globalHeadDim);
        }
        numGlobalKeyValueHeads.ifPresent(n -> positive("num_global_key_value_heads", n));
        if (!(rmsNormEps > 0) || Double.isInfinite(rmsNormEps)) {
            throw new ConfigException("rms_norm_eps must be a positive number, got " + rmsNormEps);
        }
        for (int id : eos) {
            nonNegative("eos_token_id", id);
        }
        for (int id : generationEos) {
            nonNegative("generation_config.json eos_token_id", id);
        }
        if (layerTypes.size() != numHiddenLayers) {
            throw new ConfigException("layer_types has " + layerTypes.size() + " entries but num_hidden_layers is "
                    + numHiddenLayers);
        }
        if (layerTypes.getLast() != AttentionType.FULL) {
            throw new ConfigException("the last layer must be full_attention");
        }
        for (AttentionType t : layerTypes) {
            if (!ropeParameters.containsKey(t)) {
                throw new ConfigException("rope_parameters has no entry for " + t.configName()
                        + ", which layer_types uses");
            }
        }
        if (layerTypes.contains(AttentionType.SLIDING)) {
            positive("sliding_window", slidingWindow);
        } else {
            nonNegative("sliding_window", slidingWindow);
        }
        softcap.ifPresent(cap -> {
            if (!(cap > 0) || Double.isInfinite(cap)) {
                throw new ConfigException("final_logit_softcapping must be a positive number or null, got " + cap);
            }
        });
        nonNegative("hidden_size_per_layer_input", hiddenSizePerLayerInput);
        if (hiddenSizePerLayerInput > 0) {
            positive("vocab_size_per_layer_input", vocabSizePerLayerInput);
            // embed_tokens_per_layer is [vocab, layers * ple] and per_layer_model_projection [layers * ple, hidden].
            fitsInt("num_hidden_layers * hidden_size_per_layer_input", (long) numHiddenLayers * hiddenSizePerLayerInput);
        } else {
            nonNegative("vocab_size_per_layer_input", vocabSizePerLayerInput);
        }
        if (numKvSharedLayers < 0 || numKvSharedLayers > numHiddenLayers) {
            throw new ConfigException("num_kv_shared_layers must be in [0, num_hidden_layers = " + numHiddenLayers
                    + "], got " + numKvSharedLayers);
        }
        if (moe) {
            int experts = required("num_experts", numExperts);
            int k = required("top_k_experts", topK);
            required("moe_intermediate_size", moeIntermediateSize);
            if (k > experts) {
                throw new ConfigException("top_k_experts " + k + " exceeds num_experts " + experts);
            }
        } else {
            numExperts.ifPresent(n -> nonNegative("num_experts", n));
            topK.ifPresent(n -> nonNegative("top_k_experts", n));
            moeIntermediateSize.ifPresent(n -> nonNegative("moe_intermediate_size", n));
        }
        for (Map.Entry<Integer, LayerOverride> e : perLayerConfig.entrySet()) {
            int layer = e.getKey();
            if (layer < 0 || layer >= numHiddenLayers) {
                throw new ConfigException("per_layer_config names layer " + layer + ", outside [0, "
                        + numHiddenLayers + ")");
            }
            e.getValue().headDim().ifPresent(v -> positive("per_layer_config[" + layer + "].head_dim", v));
            e.getValue().numKeyValueHeads().ifPresent(
                    v -> positive("per_layer_config[" + layer + "].num_key_value_heads", v));
        }
    }

    private static void positive(String field, long value) {
        if (value <= 0) {
            throw new ConfigException(field + " must be positive, got " + value);
        }
    }

    private static void nonNegative(String field, long value) {
        if (value < 0) {
            throw new ConfigException(field + " must not be negative, got " + value);
        }
    }

    private static void fitsInt(String what, long value) {
        if (value > Integer.MAX_VALUE) {
            throw new ConfigException(what + " = " + value + " is too large");
        }
    }

    private static int required(String field, OptionalInt value) {
        if (value.isEmpty()) {
            throw new ConfigException(field + " is required when enable_moe_block is true");
        }
        positive(field, value.getAsInt());
        return value.getAsInt();
    }
}
