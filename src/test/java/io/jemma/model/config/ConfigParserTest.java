package io.jemma.model.config;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.jemma.backend.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConfigParserTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** The smallest gemma4_text config.json: only the required shape numbers. */
    private static Map<String, Object> minimal() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("model_type", "gemma4_text");
        c.put("hidden_size", 64);
        c.put("intermediate_size", 128);
        c.put("num_hidden_layers", 12);
        c.put("num_attention_heads", 4);
        c.put("num_key_value_heads", 2);
        return c;
    }

    private static TextConfig parse(Map<String, Object> config) {
        return parse(config, null);
    }

    private static TextConfig parse(Map<String, Object> config, Map<String, Object> generation) {
        try {
            return TextConfig.parse(JSON.writeValueAsString(config),
                    generation == null ? null : JSON.writeValueAsString(generation));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new AssertionError(e);
        }
    }

    private static ConfigException fails(Map<String, Object> config, String... mentions) {
        ConfigException e = assertThrows(ConfigException.class, () -> parse(config));
        for (String m : mentions) {
            assertTrue(e.getMessage().contains(m), () -> "message \"" + e.getMessage() + "\" should mention " + m);
        }
        return e;
    }

    private static List<String> types(String... spec) {
        return Arrays.stream(spec).map(s -> s.equals("s") ? "sliding_attention" : "full_attention").toList();
    }

    // ---- defaults

    @Test
    void missingFieldsTakeTransformersDefaults() {
        TextConfig c = parse(minimal());
        assertEquals(ModelType.GEMMA4_TEXT, c.modelType());
        assertEquals("model.", c.tensorPrefix());
        assertEquals(262_144, c.vocabSize());
        assertEquals(256, c.headDim());
        assertEquals(512, c.globalHeadDim());
        assertEquals(OptionalInt.empty(), c.numGlobalKeyValueHeads());
        assertEquals("gelu_pytorch_tanh", c.hiddenActivation());
        assertEquals(131_072, c.maxPositionEmbeddings());
        assertEquals(1e-6, c.rmsNormEps());
        assertEquals(OptionalInt.of(2), c.bosTokenId());
        assertEquals(List.of(1), c.eosTokenIds());
        assertEquals(OptionalInt.of(0), c.padTokenId());
        assertTrue(c.tieWordEmbeddings());
        assertFalse(c.attentionBias());
        assertEquals(512, c.slidingWindow());
        assertEquals(OptionalDouble.empty(), c.finalLogitSoftcapping());
        assertEquals(262_144, c.vocabSizePerLayerInput());
        assertEquals(256, c.hiddenSizePerLayerInput());
        assertTrue(c.hasPerLayerEmbeddings(), "transformers defaults hidden_size_per_layer_input to 256");
        assertFalse(c.attentionKEqV());
        assertEquals(0, c.numKvSharedLayers());
        assertFalse(c.enableMoeBlock());
        assertFalse(c.useDoubleWideMlp());
        assertEquals(OptionalInt.empty(), c.numExperts());
        assertEquals(OptionalInt.empty(), c.topKExperts());
        assertEquals(OptionalInt.empty(), c.moeIntermediateSize());
        assertEquals(Optional.empty(), c.dtype());
        assertEquals(Map.of(AttentionType.SLIDING, RopeSpec.defaultRope(10_000),
                AttentionType.FULL, new RopeSpec(RopeType.PROPORTIONAL, 1e6, 0.25, 1.0)), c.ropeParameters());
        assertEquals(List.of(), c.generationEosTokenIds());
        assertEquals(List.of(1), c.stopTokenIds());
    }

    @Test
    void defaultLayerPatternIsFiveSlidingOneFull() {
        TextConfig c = parse(minimal());
        for (LayerSpec l : c.layers()) {
            assertEquals((l.index() + 1) % 6 == 0 ? AttentionType.FULL : AttentionType.SLIDING, l.attentionType());
            assertEquals(l.isFull() ? 512 : 256, l.headDim(), "global_head_dim defaults to 512");
            assertEquals(2, l.numKvHeads());
            assertEquals(l.isSliding() ? 512 : 0, l.slidingWindow());
            assertEquals(128, l.mlpWidth());
            assertFalse(l.kEqV());
            assertFalse(l.kvShared());
            assertFalse(l.moe());
            assertEquals(l.index(), l.kvSourceLayer());
        }
        Map<String, Object> eight = minimal();
        eight.put("num_hidden_layers", 8);
        TextConfig c8 = parse(eight);
        assertEquals(AttentionType.FULL, c8.layer(5).attentionType());
        assertEquals(AttentionType.FULL, c8.layer(7).attentionType(), "the last layer is forced to full");
        assertEquals(AttentionType.SLIDING, c8.layer(6).attentionType());
    }

    @Test
    void lastLayerIsForcedToFull() {
        Map<String, Object> m = minimal();
        m.put("num_hidden_layers", 3);
        m.put("layer_types", types("f", "s", "s"));
        TextConfig c = parse(m);
        assertEquals(List.of(AttentionType.FULL, AttentionType.SLIDING, AttentionType.FULL), c.layerTypes());
    }

    @Test
    void perLayerEmbeddingsOffWithZeroOrNull() {
        Map<String, Object> m = minimal();
        m.put("hidden_size_per_layer_input", 0);
        assertFalse(parse(m).hasPerLayerEmbeddings());
        m.put("hidden_size_per_layer_input", null);
        assertFalse(parse(m).hasPerLayerEmbeddings(), "the modeling code tests truthiness");
        assertEquals(0, parse(m).hiddenSizePerLayerInput());
    }

    // ---- the two model types

    @Test
    void gemma4ReadsTheDecoderFromTextConfig() {
        Map<String, Object> text = minimal();
        text.remove("model_type");
        text.put("hidden_size", 96);
        text.put("dtype", "bfloat16");
        Map<String, Object> top = new LinkedHashMap<>();
        top.put("model_type", "gemma4");
        top.put("hidden_size", 9999); // top-level decoder fields are not the decoder's
        top.put("text_config", text);
        top.put("vision_config", Map.of("hidden_size", 768));
        TextConfig c = parse(top);
        assertEquals(ModelType.GEMMA4, c.modelType());
        assertEquals("model.language_model.", c.tensorPrefix());
        assertEquals(96, c.hiddenSize());
        assertEquals(Optional.of("bfloat16"), c.dtype());
        assertTrue(c.tieWordEmbeddings());
        top.put("tie_word_embeddings", false);
        assertFalse(parse(top).tieWordEmbeddings(), "Gemma4ForConditionalGeneration ties by the top-level flag");
    }

    @Test
    void gemma4WithoutTextConfigIsRefused() {
        Map<String, Object> m = minimal();
        m.put("model_type", "gemma4");
        fails(m, "text_config");
    }

    @Test
    void unknownModelTypes() {
        Map<String, Object> m = minimal();
        m.put("model_type", "gemma3_text");
        fails(m, "config.json", "unknown model_type", "gemma3_text");
        m.put("model_type", "gemma4_assistant");
        fails(m, "gemma4_assistant", "speculative-draft-model-path");
        m.remove("model_type");
        fails(m, "model_type is missing");
    }

    @Test
    void dtypeFromEitherKey() {
        Map<String, Object> m = minimal();
        m.put("torch_dtype", "float16");
        assertEquals(Optional.of(DType.F16), parse(m).weightDType());
        m.put("dtype", "float32");
        assertEquals(Optional.of(DType.F32), parse(m).weightDType(), "dtype wins over torch_dtype");
        m.put("dtype", "float8_e4m3fn");
        assertEquals(Optional.empty(), parse(m).weightDType());
        assertEquals(Optional.of("float8_e4m3fn"), parse(m).dtype());
    }

    // ---- token ids

    @Test
    void eosAsIntListOrNullAndGenerationConfig() {
        Map<String, Object> m = minimal();
        m.put("eos_token_id", 7);
        assertEquals(List.of(7), parse(m).eosTokenIds());
        m.put("eos_token_id", List.of(1, 106));
        assertEquals(List.of(1, 106), parse(m).eosTokenIds());
        m.put("eos_token_id", null);
        assertEquals(List.of(), parse(m).eosTokenIds());
        m.put("bos_token_id", null);
        assertEquals(OptionalInt.empty(), parse(m).bosTokenId());

        m.put("eos_token_id", 1);
        TextConfig c = parse(m, Map.of("eos_token_id", List.of(1, 106), "do_sample", true));
        assertEquals(List.of(1), c.eosTokenIds());
        assertEquals(List.of(1, 106), c.generationEosTokenIds());
        assertEquals(List.of(1, 106), c.stopTokenIds());
        assertEquals(List.of(50), parse(m, Map.of("eos_token_id", 50)).stopTokenIds());
        assertEquals(List.of(1), parse(m, Map.of("top_k", 64)).stopTokenIds());
    }

    @Test
    void loadsFromAModelDirectory() throws IOException {
        Files.writeString(dir.resolve("config.json"), JSON.writeValueAsString(minimal()));
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": [1, 106]}");
        TextConfig c = TextConfig.load(dir);
        assertEquals(List.of(1, 106), c.stopTokenIds());
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": ");
        ConfigException e = assertThrows(ConfigException.class, () -> TextConfig.load(dir));
        assertTrue(e.getMessage().contains("generation_config.json"), e.getMessage());
        Files.delete(dir.resolve("generation_config.json"));
        assertEquals(List.of(1), TextConfig.load(dir).stopTokenIds());
        Files.writeString(dir.resolve("config.json"), "[]");
        e = assertThrows(ConfigException.class, () -> TextConfig.load(dir));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("not a JSON object"));
        e = assertThrows(ConfigException.class, () -> TextConfig.load(dir.resolve("nowhere")));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("missing"));
    }

    // ---- attention geometry: old flat style and per_layer_config

    @Test
    void globalHeadsApplyToFullLayersOnlyWithKEqV() {
        Map<String, Object> m = minimal();
        m.put("num_attention_heads", 8);
        m.put("num_key_value_heads", 4);
        m.put("num_global_key_value_heads", 1);
        TextConfig plain = parse(m);
        assertEquals(4, plain.layer(5).numKvHeads(), "without attention_k_eq_v the global KV heads are unused");
        assertTrue(plain.layer(5).hasVProj());
        m.put("attention_k_eq_v", true);
        TextConfig keqv = parse(m);
        assertEquals(1, keqv.layer(5).numKvHeads());
        assertTrue(keqv.layer(5).kEqV());
        assertFalse(keqv.layer(5).hasVProj());
        assertTrue(keqv.layer(5).hasKProj());
        assertEquals(4, keqv.layer(0).numKvHeads());
        assertFalse(keqv.layer(0).kEqV());
        assertTrue(keqv.layer(0).hasVProj());
        m.put("num_global_key_value_heads", null);
        assertEquals(4, parse(m).layer(5).numKvHeads(), "k_eq_v with no global KV heads keeps num_key_value_heads");
    }

    @Test
    void globalHeadDimNullOrGiven() {
        Map<String, Object> m = minimal();
        m.put("global_head_dim", 128);
        assertEquals(128, parse(m).layer(5).headDim());
        assertEquals(256, parse(m).layer(4).headDim());
        m.put("global_head_dim", null);
        assertEquals(256, parse(m).layer(5).headDim(), "no global head dim: full layers keep head_dim");
        assertEquals(Map.of(), parse(m).perLayerConfig());
    }

    @Test
    void perLayerConfigAsNewerTransformersWriteIt() {
        Map<String, Object> m = minimal();
        m.put("num_attention_heads", 8);
        m.put("num_key_value_heads", 4);
        m.put("global_head_dim", 64);            // ignored: per_layer_config is authoritative when present
        m.put("num_global_key_value_heads", 1);  // likewise
        m.put("attention_k_eq_v", true);
        m.put("per_layer_config", Map.of("05", Map.of("head_dim", 512, "num_key_value_heads", 2),
                "11", Map.of("head_dim", 512, "num_key_value_heads", 2)));
        TextConfig c = parse(m);
        for (int full : List.of(5, 11)) {
            assertEquals(512, c.layer(full).headDim());
            assertEquals(2, c.layer(full).numKvHeads());
        }
        assertEquals(256, c.layer(0).headDim());
        assertEquals(4, c.layer(0).numKvHeads());
        assertEquals(new LayerOverride(OptionalInt.of(512), OptionalInt.of(2)), c.perLayerConfig().get(5));

        m.put("per_layer_config", Map.of());
        assertEquals(256, parse(m).layer(5).headDim(), "an empty per_layer_config overrides nothing");
    }

    @Test
    void perLayerConfigErrors() {
        Map<String, Object> m = minimal();
        m.put("per_layer_config", Map.of("5", Map.of("intermediate_size", 64)));
        fails(m, "per_layer_config[5]", "intermediate_size", "not supported");
        m.put("per_layer_config", Map.of("12", Map.of("head_dim", 64)));
        fails(m, "per_layer_config", "layer 12");
        m.put("per_layer_config", Map.of("five", Map.of("head_dim", 64)));
        fails(m, "per_layer_config", "five");
        m.put("per_layer_config", Map.of("5", Map.of("head_dim", "512")));
        fails(m, "head_dim", "integer");
        m.put("per_layer_config", Map.of("5", Map.of("head_dim", -2)));
        fails(m, "head_dim", "positive");
        m.put("per_layer_config", List.of(1));
        fails(m, "per_layer_config");
        // transformers builds one RoPE per layer type and refuses a type whose layers differ.
        m.put("per_layer_config", Map.of("5", Map.of("head_dim", 512)));
        fails(m, "layer 11", "differ from layer 5");
    }

    // ---- KV sharing, double-wide MLP, MoE

    @Test
    void kvSharedLayersReadTheLastNonSharedLayerOfTheirType() {
        Map<String, Object> m = minimal();
        m.put("num_hidden_layers", 10);
        m.put("layer_types", types("s", "s", "f", "s", "f", "s", "s", "f", "s", "f"));
        m.put("num_kv_shared_layers", 4);
        m.put("use_double_wide_mlp", true);
        TextConfig c = parse(m);
        assertEquals(6, c.firstKvSharedLayer());
        for (LayerSpec l : c.layers()) {
            assertEquals(l.index() >= 6, l.kvShared(), "layer " + l.index());
            assertEquals(l.kvShared() ? 256 : 128, l.mlpWidth(), "double-wide only on shared layers");
        }
        assertEquals(5, c.layer(6).kvSourceLayer(), "sliding: the last non-shared sliding layer");
        assertEquals(4, c.layer(7).kvSourceLayer(), "full: the last non-shared full layer");
        assertEquals(5, c.layer(8).kvSourceLayer());
        assertEquals(4, c.layer(9).kvSourceLayer());
        assertEquals(3, c.layer(3).kvSourceLayer(), "a non-shared layer is its own source");
        assertFalse(c.layer(9).hasKProj());

        m.put("use_double_wide_mlp", false);
        assertEquals(128, parse(m).layer(9).mlpWidth());
    }

    @Test
    void kvSharingNeedsAnEarlierLayerOfTheSameType() {
        Map<String, Object> m = minimal();
        m.put("num_hidden_layers", 4);
        m.put("layer_types", types("s", "s", "s", "f"));
        m.put("num_kv_shared_layers", 1);
        fails(m, "layer 3", "full_attention", "no earlier non-shared layer");
        m.put("num_kv_shared_layers", 4);
        fails(m, "no earlier non-shared layer");
        m.put("num_kv_shared_layers", 5);
        fails(m, "num_kv_shared_layers");
        m.put("num_kv_shared_layers", -1);
        fails(m, "num_kv_shared_layers");
    }

    @Test
    void mixtureOfExperts() {
        Map<String, Object> m = minimal();
        m.put("enable_moe_block", true);
        m.put("num_experts", 16);
        m.put("top_k_experts", 4);
        m.put("moe_intermediate_size", 32);
        TextConfig c = parse(m);
        assertTrue(c.layers().stream().allMatch(LayerSpec::moe));
        m.put("top_k_experts", 17);
        fails(m, "top_k_experts", "exceeds");
        m.put("top_k_experts", null);
        fails(m, "top_k_experts", "required");
        m.put("top_k_experts", 4);
        m.remove("num_experts");
        fails(m, "num_experts", "required");
    }

    // ---- RoPE parameters

    @Test
    void ropeParametersReplaceTheDefaults() {
        Map<String, Object> m = minimal();
        m.put("rope_parameters", Map.of(
                "sliding_attention", Map.of("rope_type", "default", "rope_theta", 5000.0, "partial_rotary_factor", 0.5),
                "full_attention", Map.of("rope_type", "proportional", "rope_theta", 2e6, "partial_rotary_factor", 0.5,
                        "factor", 4.0)));
        TextConfig c = parse(m);
        assertEquals(RopeSpec.defaultRope(5000), c.layer(0).rope(), "default rope ignores partial_rotary_factor");
        assertEquals(new RopeSpec(RopeType.PROPORTIONAL, 2e6, 0.5, 4.0), c.layer(5).rope());
        m.put("rope_parameters", Map.of("sliding_attention", Map.of("rope_type", "default", "rope_theta", 1e4)));
        fails(m, "rope_parameters", "full_attention");
    }

    @Test
    void ropeParameterErrors() {
        Map<String, Object> m = minimal();
        m.put("rope_parameters", Map.of("rope_type", "default", "rope_theta", 1e4));
        fails(m, "rope_parameters", "not a layer type");
        m.put("rope_parameters", Map.of("sliding_attention", Map.of("rope_type", "yarn", "rope_theta", 1e4),
                "full_attention", Map.of("rope_type", "default", "rope_theta", 1e4)));
        fails(m, "rope_parameters.sliding_attention", "unknown rope_type", "yarn");
        m.put("rope_parameters", Map.of("sliding_attention", Map.of("rope_type", "default"),
                "full_attention", Map.of("rope_type", "default", "rope_theta", 1e4)));
        fails(m, "rope_parameters.sliding_attention", "rope_theta");
        m.put("rope_parameters", Map.of("sliding_attention", Map.of("rope_theta", 1e4),
                "full_attention", Map.of("rope_type", "default", "rope_theta", 1e4)));
        fails(m, "rope_parameters.sliding_attention", "rope_type");
        m.put("rope_parameters", Map.of("sliding_attention", Map.of("rope_type", "default", "rope_theta", -1),
                "full_attention", Map.of("rope_type", "default", "rope_theta", 1e4)));
        fails(m, "rope_theta", "positive");
        Map<String, Object> nulled = new LinkedHashMap<>();
        nulled.put("sliding_attention", null);
        nulled.put("full_attention", Map.of("rope_type", "default", "rope_theta", 1e4));
        m.put("rope_parameters", nulled);
        fails(m, "rope_parameters", "sliding_attention");
    }

    // ---- validation

    @Test
    void headsMustDivideByKvHeads() {
        Map<String, Object> m = minimal();
        m.put("num_key_value_heads", 3);
        fails(m, "layer 0", "num_attention_heads 4", "not divisible", "3");
        m.put("num_key_value_heads", 2);
        m.put("num_global_key_value_heads", 3);
        m.put("attention_k_eq_v", true);
        fails(m, "layer 5", "not divisible");
    }

    @Test
    void requiredFieldsAndTypes() {
        for (String required : List.of("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads")) {
            Map<String, Object> m = minimal();
            m.remove(required);
            fails(m, "config.json", required, "missing");
        }
        Map<String, Object> m = minimal();
        m.put("hidden_size", "64");
        fails(m, "hidden_size", "integer");
        m = minimal();
        m.put("hidden_size", 64.5);
        fails(m, "hidden_size", "integer");
        m = minimal();
        m.put("hidden_size", 1L << 40);
        fails(m, "hidden_size", "integer");
        m = minimal();
        m.put("head_dim", null);
        fails(m, "head_dim", "integer");
        m = minimal();
        m.put("attention_k_eq_v", "yes");
        fails(m, "attention_k_eq_v", "true or false");
        m = minimal();
        m.put("rms_norm_eps", "1e-6");
        fails(m, "rms_norm_eps", "number");
        m = minimal();
        m.put("eos_token_id", List.of(1, "x"));
        fails(m, "eos_token_id", "integer");
        assertThrows(ConfigException.class, () -> TextConfig.parse("{\"model_type\": ", null));
    }

    @Test
    void negativeOrZeroSizes() {
        for (String field : List.of("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings", "sliding_window")) {
            for (int bad : new int[] {0, -8}) {
                Map<String, Object> m = minimal();
                m.put(field, bad);
                fails(m, field);
            }
        }
        Map<String, Object> m = minimal();
        m.put("hidden_size_per_layer_input", -1);
        fails(m, "hidden_size_per_layer_input");
        m = minimal();
        m.put("global_head_dim", -1);
        fails(m, "global_head_dim");
        m = minimal();
        m.put("rms_norm_eps", 0.0);
        fails(m, "rms_norm_eps");
        m = minimal();
        m.put("final_logit_softcapping", 0.0);
        fails(m, "final_logit_softcapping");
        m = minimal();
        m.put("eos_token_id", -1);
        fails(m, "eos_token_id");
        m = minimal();
        m.put("head_dim", 255);
        fails(m, "head dim 255", "odd");
    }

    @Test
    void layerTypesMustMatch() {
        Map<String, Object> m = minimal();
        m.put("layer_types", types("s", "f"));
        fails(m, "layer_types has 2 entries", "num_hidden_layers is 12");
        m.put("layer_types", Collections.nCopies(12, "local_attention"));
        fails(m, "unknown layer type", "local_attention");
        m.put("layer_types", "sliding_attention");
        fails(m, "layer_types", "list");
    }

    @Test
    void bidirectionalAttention() {
        Map<String, Object> m = minimal();
        m.put("use_bidirectional_attention", "vision");
        assertEquals(512, parse(m).slidingWindow(), "vision tokens only: the text decoder is unchanged");
        m.put("use_bidirectional_attention", "all");
        fails(m, "use_bidirectional_attention", "not supported");
        m.put("use_bidirectional_attention", "some");
        fails(m, "use_bidirectional_attention");
    }

    @Test
    void embeddingScalesRoundToTheWeightDtype() {
        Map<String, Object> m = minimal();
        m.put("hidden_size", 3072);
        TextConfig c = parse(m);
        assertEquals(55.5f, c.embeddingScale(DType.BF16), "sqrt(3072) = 55.4256 in bf16");
        assertEquals((float) Math.sqrt(3072), c.embeddingScale(DType.F32));
        assertEquals(Float.float16ToFloat(Float.floatToFloat16((float) Math.sqrt(3072))), c.embeddingScale(DType.F16));
        assertEquals(55.5f, c.embeddingScale(), "bf16 when the config declares no dtype");
        assertEquals(16.0f, c.perLayerEmbeddingScale(DType.BF16));
        m.put("dtype", "float32");
        assertEquals((float) Math.sqrt(3072), parse(m).embeddingScale());
    }

    @Test
    void recordIsValidByConstruction() {
        TextConfig c = parse(minimal());
        assertThrows(UnsupportedOperationException.class, () -> c.layers().add(c.layer(0)));
        List<LayerSpec> wrong = new java.util.ArrayList<>(c.layers());
        wrong.set(0, c.layer(1));
        assertThrows(IllegalArgumentException.class, () -> new TextConfig(c.modelType(), c.vocabSize(),
                c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), c.numAttentionHeads(), c.numKeyValueHeads(),
                c.headDim(), c.globalHeadDim(), c.numGlobalKeyValueHeads(), c.perLayerConfig(), c.hiddenActivation(),
                c.maxPositionEmbeddings(), c.rmsNormEps(), c.bosTokenId(), c.padTokenId(), c.eosTokenIds(),
                c.generationEosTokenIds(), c.tieWordEmbeddings(), c.ropeParameters(), c.attentionBias(),
                c.slidingWindow(), c.layerTypes(), c.finalLogitSoftcapping(), c.vocabSizePerLayerInput(),
                c.hiddenSizePerLayerInput(), c.attentionKEqV(), c.numKvSharedLayers(), c.enableMoeBlock(),
                c.useDoubleWideMlp(), c.numExperts(), c.topKExperts(), c.moeIntermediateSize(), c.dtype(), wrong));
        TextConfig same = new TextConfig(c.modelType(), c.vocabSize(), c.hiddenSize(), c.intermediateSize(),
                c.numHiddenLayers(), c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.globalHeadDim(),
                c.numGlobalKeyValueHeads(), c.perLayerConfig(), c.hiddenActivation(), c.maxPositionEmbeddings(),
                c.rmsNormEps(), c.bosTokenId(), c.padTokenId(), c.eosTokenIds(), c.generationEosTokenIds(),
                c.tieWordEmbeddings(), c.ropeParameters(), c.attentionBias(), c.slidingWindow(), c.layerTypes(),
                c.finalLogitSoftcapping(), c.vocabSizePerLayerInput(), c.hiddenSizePerLayerInput(), c.attentionKEqV(),
                c.numKvSharedLayers(), c.enableMoeBlock(), c.useDoubleWideMlp(), c.numExperts(), c.topKExperts(),
                c.moeIntermediateSize(), c.dtype(), null);
        assertEquals(c, same);
    }
}
