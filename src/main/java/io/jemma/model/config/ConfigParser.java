package io.jemma.model.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * Reads config.json (+ generation_config.json) into a {@link TextConfig}, applying transformers 5.17's
 * {@code Gemma4TextConfig} defaults and {@code __post_init__} rules.
 */
final class ConfigParser {

    /** Python's json module writes NaN and Infinity as bare words; accept what it writes. */
    private static final JsonMapper MAPPER = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .build();

    // transformers' Gemma4TextConfig defaults (configuration_gemma4.py, 5.17).
    static final int DEFAULT_VOCAB_SIZE = 262_144;
    static final int DEFAULT_HEAD_DIM = 256;
    static final int DEFAULT_GLOBAL_HEAD_DIM = 512;
    static final String DEFAULT_ACTIVATION = "gelu_pytorch_tanh";
    static final int DEFAULT_MAX_POSITIONS = 131_072;
    static final double DEFAULT_RMS_NORM_EPS = 1e-6;
    static final int DEFAULT_PAD = 0;
    static final int DEFAULT_EOS = 1;
    static final int DEFAULT_BOS = 2;
    static final int DEFAULT_SLIDING_WINDOW = 512;
    static final int DEFAULT_VOCAB_PER_LAYER_INPUT = 262_144;
    static final int DEFAULT_HIDDEN_PER_LAYER_INPUT = 256;
    /** The default layer pattern: every 6th layer is full (5 sliding : 1 full). */
    static final int DEFAULT_SLIDING_PATTERN = 6;
    static final RopeSpec DEFAULT_SLIDING_ROPE = RopeSpec.defaultRope(10_000.0);
    static final RopeSpec DEFAULT_FULL_ROPE = RopeSpec.proportional(1_000_000.0, 0.25);

    private ConfigParser() {
    }

    static TextConfig load(Path modelDir) {
        Path config = modelDir.resolve("config.json");
        if (!Files.isRegularFile(config)) {
            throw new ConfigException(config + ": missing");
        }
        Path generation = modelDir.resolve("generation_config.json");
        return parse(read(config), Files.isRegularFile(generation) ? read(generation) : null, config.toString());
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read: " + e, e);
        }
    }

    static TextConfig parse(String configJson, String generationJson, String file) {
        JsonNode root = tree(configJson, file);
        JsonFields top = new JsonFields(root, file);
        if (!top.has("model_type") || top.isNull("model_type")) {
            throw new ConfigException(file + ": model_type is missing");
        }
        ModelType modelType;
        try {
            modelType = ModelType.fromConfigName(top.stringOr("model_type", null));
        } catch (ConfigException e) {
            throw new ConfigException(file + ": " + e.getMessage(), e);
        }
        JsonFields text = top;
        if (modelType == ModelType.GEMMA4) {
            JsonNode textNode = root.get("text_config");
            if (textNode == null || !textNode.isObject()) {
                throw new ConfigException(file + ": model_type gemma4 needs a text_config object");
            }
            text = new JsonFields(textNode, file + " text_config");
        }
        List<Integer> generationEos = List.of();
        if (generationJson != null) {
            String genFile = file.endsWith("config.json")
                    ? file.substring(0, file.length() - "config.json".length()) + "generation_config.json"
                    : "generation_config.json";
            JsonFields gen = new JsonFields(tree(generationJson, genFile), genFile);
            generationEos = gen.intOrIntList("eos_token_id", List.of());
        }
        try {
            return build(modelType, top, text, generationEos);
        } catch (ConfigException e) {
            throw e.getMessage().startsWith(file) ? e : new ConfigException(file + ": " + e.getMessage(), e);
        }
    }

    private static JsonNode tree(String json, String file) {
        JsonNode node;
        try {
            node = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new ConfigException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (node == null || !node.isObject()) {
            throw new ConfigException(file + ": not a JSON object");
        }
        return node;
    }

    /**
     * Reads a {@code gemma4_assistant} config.json: its decoder settings under {@code text_config} (a
     * {@code gemma4_text} config whose layers all read the target's KV) and the assistant's own fields, with
     * transformers 5.17's {@code Gemma4AssistantConfig} defaults and {@code validate_architecture} rules.
     */
    static AssistantConfig parseAssistant(String configJson, String file) {
        JsonNode root = tree(configJson, file);
        JsonFields top = new JsonFields(root, file);
        String type = top.stringOr("model_type", null);
        if (!AssistantConfig.MODEL_TYPE.equals(type)) {
            throw new ConfigException(file + ": model_type is " + (type == null ? "missing" : "\"" + type + "\"")
                    + ", not gemma4_assistant: the speculative draft model must be a Gemma 4 assistant");
        }
        JsonNode textNode = root.get("text_config");
        if (textNode == null || !textNode.isObject()) {
            throw new ConfigException(file + ": model_type gemma4_assistant needs a text_config object");
        }
        JsonFields text = new JsonFields(textNode, file + " text_config");
        try {
            int layers = text.requiredInt("num_hidden_layers");
            // Gemma4AssistantConfig.__post_init__: an unset (0) num_kv_shared_layers means all layers.
            int shared = text.intOr("num_kv_shared_layers", 0);
            if (shared != 0 && shared != layers) {
                throw new ConfigException("all layers of a Gemma 4 assistant read the target's KV: "
                        + "num_kv_shared_layers must be " + layers + ", got " + shared);
            }
            if (text.boolOr("enable_moe_block", false)) {
                throw new ConfigException("enable_moe_block must be false in an assistant");
            }
            if (text.boolOr("use_double_wide_mlp", false)) {
                throw new ConfigException("use_double_wide_mlp must be false in an assistant");
            }
            int ple = text.isNull("hidden_size_per_layer_input") ? 0
                    : text.intOr("hidden_size_per_layer_input", DEFAULT_HIDDEN_PER_LAYER_INPUT);
            if (ple != 0) {
                throw new ConfigException("hidden_size_per_layer_input must be 0 in an assistant, got " + ple);
            }
            // The decoder is parsed as an unshared one (its layers' geometry and weights); which target layers
            // they read is decided when the assistant is bound to its target (AssistantConfig.layersFor).
            TextConfig decoder = build(ModelType.GEMMA4_TEXT, top, text, List.of(), true);
            boolean ordered = top.boolOr("use_ordered_embeddings", false);
            return new AssistantConfig(decoder,
                    top.intOr("backbone_hidden_size", AssistantConfig.DEFAULT_BACKBONE_HIDDEN_SIZE),
                    ordered,
                    top.intOr("num_centroids", AssistantConfig.DEFAULT_NUM_CENTROIDS),
                    top.intOr("centroid_intermediate_top_k", AssistantConfig.DEFAULT_CENTROID_TOP_K));
        } catch (ConfigException e) {
            throw e.getMessage().startsWith(file) ? e : new ConfigException(file + ": " + e.getMessage(), e);
        }
    }

    private static TextConfig build(ModelType modelType, JsonFields top, JsonFields text, List<Integer> generationEos) {
        return build(modelType, top, text, generationEos, false);
    }

    private static TextConfig build(ModelType modelType, JsonFields top, JsonFields text, List<Integer> generationEos,
                                    boolean assistant) {
        // The four numbers that fix the model's shape are required: transformers' defaults for them
        // (2304 / 9216 / 30 / 8) come from an older Gemma and would only turn a broken file into a shape
        // mismatch much later. Everything else takes transformers' default.
        int hidden = text.requiredInt("hidden_size");
        int intermediate = text.requiredInt("intermediate_size");
        int layers = text.requiredInt("num_hidden_layers");
        int heads = text.requiredInt("num_attention_heads");
        int kvHeads = text.requiredInt("num_key_value_heads");
        if (layers <= 0) {
            throw new ConfigException("num_hidden_layers must be positive, got " + layers);
        }
        if (layers > 100_000) {
            throw new ConfigException("num_hidden_layers " + layers + " is not a plausible model");
        }

        String bidirectional = text.optionalString("use_bidirectional_attention").orElse(null);
        if ("all".equals(bidirectional)) {
            // transformers then turns causal masking off and halves the window: an encoder, not a decoder.
            throw new ConfigException("use_bidirectional_attention \"all\" (a non-causal model) is not supported");
        }
        if (bidirectional != null && !bidirectional.equals("vision")) {
            throw new ConfigException("use_bidirectional_attention must be \"all\", \"vision\" or null, got \""
                    + bidirectional + "\"");
        }

        List<AttentionType> layerTypes = layerTypes(text, layers);
        boolean kEqV = text.boolOr("attention_k_eq_v", false);
        int headDim = text.intOr("head_dim", DEFAULT_HEAD_DIM);
        // global_head_dim and num_global_key_value_heads are not fields but __post_init__ kwargs: absent
        // means 512 / None; null means "none", and then full layers keep head_dim.
        int globalHeadDim = text.isNull("global_head_dim") ? 0 : text.intOr("global_head_dim", DEFAULT_GLOBAL_HEAD_DIM);
        OptionalInt numGlobalKv = text.optionalInt("num_global_key_value_heads", OptionalInt.empty());
        Map<Integer, LayerOverride> perLayer = text.has("per_layer_config") && !text.isNull("per_layer_config")
                ? perLayerConfig(text)
                : synthesizedOverrides(layerTypes, globalHeadDim, kEqV ? numGlobalKv : OptionalInt.empty());

        // hidden_size_per_layer_input: the modeling code tests truthiness, so null and 0 both mean no PLE.
        int ple = text.isNull("hidden_size_per_layer_input") ? 0
                : text.intOr("hidden_size_per_layer_input", DEFAULT_HIDDEN_PER_LAYER_INPUT);

        // Gemma4ForConditionalGeneration ties its lm_head by the top-level config (default true).
        boolean tie = top.boolOr("tie_word_embeddings", true);

        var dtype = text.optionalString("dtype")
                .or(() -> text.optionalString("torch_dtype"))
                .or(() -> top.optionalString("dtype"))
                .or(() -> top.optionalString("torch_dtype"));

        return new TextConfig(
                modelType,
                text.intOr("vocab_size", DEFAULT_VOCAB_SIZE),
                hidden,
                intermediate,
                layers,
                heads,
                kvHeads,
                headDim,
                globalHeadDim,
                numGlobalKv,
                perLayer,
                text.stringOr("hidden_activation", DEFAULT_ACTIVATION),
                text.intOr("max_position_embeddings", DEFAULT_MAX_POSITIONS),
                text.doubleOr("rms_norm_eps", DEFAULT_RMS_NORM_EPS),
                text.optionalInt("bos_token_id", OptionalInt.of(DEFAULT_BOS)),
                text.optionalInt("pad_token_id", OptionalInt.of(DEFAULT_PAD)),
                text.intOrIntList("eos_token_id", List.of(DEFAULT_EOS)),
                generationEos,
                tie,
                ropeParameters(text),
                text.boolOr("attention_bias", false),
                text.intOr("sliding_window", DEFAULT_SLIDING_WINDOW),
                layerTypes,
                text.optionalDouble("final_logit_softcapping"),
                text.intOr("vocab_size_per_layer_input", assistant ? 0 : DEFAULT_VOCAB_PER_LAYER_INPUT),
                ple,
                kEqV,
                assistant ? 0 : text.intOr("num_kv_shared_layers", 0),
                text.boolOr("enable_moe_block", false),
                text.boolOr("use_double_wide_mlp", false),
                text.optionalInt("num_experts", OptionalInt.empty()),
                text.optionalInt("top_k_experts", OptionalInt.empty()),
                text.optionalInt("moe_intermediate_size", OptionalInt.empty()),
                dtype,
                null);
    }

    /** layer_types, or the default 5:1 pattern; the last layer is forced to full attention as transformers does. */
    private static List<AttentionType> layerTypes(JsonFields text, int layers) {
        List<AttentionType> types = new ArrayList<>(layers);
        JsonNode node = text.node().get("layer_types");
        if (node == null || node.isNull()) {
            for (int i = 0; i < layers; i++) {
                types.add((i + 1) % DEFAULT_SLIDING_PATTERN != 0 ? AttentionType.SLIDING : AttentionType.FULL);
            }
        } else {
            if (!node.isArray()) {
                throw new ConfigException("layer_types must be a list, got " + node);
            }
            for (JsonNode t : node) {
                if (!t.isTextual()) {
                    throw new ConfigException("layer_types entry " + t + " is not a string");
                }
                types.add(AttentionType.fromConfigName(t.textValue()));
            }
            if (types.size() != layers) {
                throw new ConfigException("layer_types has " + types.size() + " entries but num_hidden_layers is "
                        + layers);
            }
        }
        types.set(layers - 1, AttentionType.FULL);
        return types;
    }

    /** What Gemma4TextConfig.__post_init__ builds when config.json has no per_layer_config. */
    private static Map<Integer, LayerOverride> synthesizedOverrides(List<AttentionType> types, int globalHeadDim,
                                                                     OptionalInt globalKvHeads) {
        LayerOverride full = new LayerOverride(
                globalHeadDim > 0 ? OptionalInt.of(globalHeadDim) : OptionalInt.empty(), globalKvHeads);
        Map<Integer, LayerOverride> overrides = new HashMap<>();
        if (!full.isEmpty()) {
            for (int i = 0; i < types.size(); i++) {
                if (types.get(i) == AttentionType.FULL) {
                    overrides.put(i, full);
                }
            }
        }
        return overrides;
    }

    /**
     * per_layer_config as transformers writes it: {@code {"05": {"head_dim": 512, "num_key_value_heads": 4}}}
     * (keys zero-padded so that they sort). Only the attention geometry is read per layer by transformers'
     * Gemma 4 modules; any other override would be silently ignored there, so it is refused here.
     */
    private static Map<Integer, LayerOverride> perLayerConfig(JsonFields text) {
        JsonNode node = text.node().get("per_layer_config");
        if (!node.isObject()) {
            throw new ConfigException("per_layer_config must be an object of layer index -> overrides, got " + node);
        }
        Map<Integer, LayerOverride> overrides = new HashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            int layer;
            try {
                layer = Integer.parseInt(e.getKey().trim());
            } catch (NumberFormatException bad) {
                throw new ConfigException("per_layer_config key \"" + e.getKey() + "\" is not a layer index");
            }
            String where = "per_layer_config[" + e.getKey() + "]";
            if (!e.getValue().isObject()) {
                throw new ConfigException(where + " must be an object, got " + e.getValue());
            }
            JsonFields fields = new JsonFields(e.getValue(), where);
            for (Map.Entry<String, JsonNode> f : e.getValue().properties()) {
                if (!f.getKey().equals("head_dim") && !f.getKey().equals("num_key_value_heads")) {
                    throw new ConfigException(where + ": override of " + f.getKey()
                            + " is not supported (only head_dim and num_key_value_heads)");
                }
            }
            OptionalInt dim = fields.has("head_dim") ? OptionalInt.of(fields.requiredInt("head_dim")) : OptionalInt.empty();
            OptionalInt kv = fields.has("num_key_value_heads")
                    ? OptionalInt.of(fields.requiredInt("num_key_value_heads")) : OptionalInt.empty();
            if (overrides.put(layer, new LayerOverride(dim, kv)) != null) {
                throw new ConfigException("per_layer_config names layer " + layer + " twice");
            }
        }
        return overrides;
    }

    /** rope_parameters keyed by layer type; absent or null -> transformers' defaults (a given dict replaces them). */
    private static Map<AttentionType, RopeSpec> ropeParameters(JsonFields text) {
        Map<AttentionType, RopeSpec> ropes = new EnumMap<>(AttentionType.class);
        JsonNode node = text.node().get("rope_parameters");
        if (node == null || node.isNull()) {
            ropes.put(AttentionType.SLIDING, DEFAULT_SLIDING_ROPE);
            ropes.put(AttentionType.FULL, DEFAULT_FULL_ROPE);
            return ropes;
        }
        if (!node.isObject()) {
            throw new ConfigException("rope_parameters must be an object keyed by layer type, got " + node);
        }
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            AttentionType type;
            try {
                type = AttentionType.fromConfigName(e.getKey());
            } catch (ConfigException notAType) {
                throw new ConfigException("rope_parameters key \"" + e.getKey() + "\" is not a layer type; Gemma 4 "
                        + "keys its RoPE by sliding_attention / full_attention");
            }
            if (e.getValue().isNull()) {
                continue; // transformers skips a null entry: that type then has no RoPE, refused later if used
            }
            if (!e.getValue().isObject()) {
                throw new ConfigException("rope_parameters." + e.getKey() + " must be an object, got " + e.getValue());
            }
            ropes.put(type, rope(new JsonFields(e.getValue(), "rope_parameters." + e.getKey())));
        }
        return ropes;
    }

    private static RopeSpec rope(JsonFields f) {
        if (!f.has("rope_type") || f.isNull("rope_type")) {
            throw new ConfigException(f.where() + ": rope_type is missing");
        }
        if (!f.has("rope_theta") || f.isNull("rope_theta")) {
            throw new ConfigException(f.where() + ": rope_theta is missing");
        }
        try {
            RopeType type = RopeType.fromConfigName(f.stringOr("rope_type", null));
            double theta = f.doubleOr("rope_theta", 0);
            return switch (type) {
                // compute_default_rope_parameters reads only rope_theta.
                case DEFAULT -> RopeSpec.defaultRope(theta);
                case PROPORTIONAL -> new RopeSpec(type, theta, f.doubleOr("partial_rotary_factor", 1.0),
                        f.doubleOr("factor", 1.0));
            };
        } catch (ConfigException e) {
            throw e.getMessage().startsWith(f.where()) ? e : new ConfigException(f.where() + ": " + e.getMessage(), e);
        }
    }
}
