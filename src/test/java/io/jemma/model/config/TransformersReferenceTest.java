package io.jemma.model.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jemma.backend.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Compares against what transformers 5.17 itself computed (torch 2.11, on the GPU host; see the
 * {@code _source} field of each resource): the config.json it writes for each released model (new style,
 * with {@code per_layer_config}), the attention and MLP modules it builds from it, its RoPE buffers, and
 * the names and shapes of its state dict.
 */
class TransformersReferenceTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonNode reference(String name) throws IOException {
        try (InputStream in = TransformersReferenceTest.class.getResourceAsStream("transformers/" + name + ".json")) {
            return JSON.readTree(in);
        }
    }

    private static TextConfig parse(JsonNode config) {
        return TextConfig.parse(config.toString(), null);
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma-4-31b", "gemma-4-26b-a4b", "gemma-4-e4b", "gemma-4-e2b"})
    void layersMatchTransformersModules(String model) throws IOException {
        JsonNode ref = reference(model);
        TextConfig config = parse(ref.get("config_json"));
        JsonNode layers = ref.get("layers");
        assertEquals(layers.size(), config.numHiddenLayers());
        Set<Integer> storing = new HashSet<>();
        for (int i = 0; i < layers.size(); i++) {
            JsonNode r = layers.get(i);
            LayerSpec l = config.layer(i);
            String at = model + " layer " + i;
            assertEquals(r.get("type").textValue(), l.attentionType().configName(), at);
            assertEquals(r.get("head_dim").intValue(), l.headDim(), at);
            assertEquals(r.get("heads").intValue(), l.numHeads(), at);
            assertEquals(r.get("shared").booleanValue(), l.kvShared(), at);
            assertEquals(r.get("v_proj").booleanValue(), l.hasVProj(), at);
            assertEquals(r.get("window").isNull() ? 0 : r.get("window").intValue(), l.slidingWindow(), at);
            assertEquals(r.get("mlp").intValue(), l.mlpWidth(), at);
            if (r.get("kv_heads").isNull()) {
                // A shared layer builds no k_proj: its KV heads are those of the layer it reads.
                assertEquals(config.layer(l.kvSourceLayer()).numKvHeads(), l.numKvHeads(), at);
            } else {
                assertEquals(r.get("kv_heads").intValue(), l.numKvHeads(), at);
            }
            if (r.get("store").booleanValue()) {
                storing.add(i);
            }
        }
        // transformers: the layers with store_full_length_kv are exactly those shared layers read from.
        Set<Integer> sources = new HashSet<>();
        for (LayerSpec l : config.layers()) {
            if (l.kvShared()) {
                sources.add(l.kvSourceLayer());
                assertEquals(l.attentionType(), config.layer(l.kvSourceLayer()).attentionType());
                assertTrue(!config.layer(l.kvSourceLayer()).kvShared());
            } else {
                assertEquals(l.index(), l.kvSourceLayer());
            }
        }
        if (config.numKvSharedLayers() > 0) {
            assertEquals(storing, sources, model);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma-4-31b", "gemma-4-26b-a4b", "gemma-4-e4b", "gemma-4-e2b"})
    void bundledConfigDerivesWhatTransformersWrites(String model) throws IOException {
        TextConfig fromTransformers = parse(reference(model).get("config_json"));
        TextConfig bundled = BundledConfigs.load(model);
        assertEquals(fromTransformers.layers(), bundled.layers());
        assertEquals(fromTransformers.ropeParameters(), bundled.ropeParameters());
        assertEquals(fromTransformers.finalLogitSoftcapping(), bundled.finalLogitSoftcapping());
        assertEquals(fromTransformers.hiddenSizePerLayerInput(), bundled.hiddenSizePerLayerInput());
        assertEquals(fromTransformers.maxPositionEmbeddings(), bundled.maxPositionEmbeddings());
        assertEquals(fromTransformers.weightDType(), bundled.weightDType());
        assertEquals(fromTransformers.numExperts(), bundled.numExperts());
        assertEquals(fromTransformers.topKExperts(), bundled.topKExperts());
        assertEquals(fromTransformers.moeIntermediateSize(), bundled.moeIntermediateSize());
        assertEquals(fromTransformers.perLayerConfig(), bundled.perLayerConfig(),
                "the synthesized overrides equal the ones transformers serializes");
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma-4-31b", "gemma-4-26b-a4b", "gemma-4-e4b", "gemma-4-e2b"})
    void inverseFrequenciesAreBitExact(String model) throws IOException {
        JsonNode ref = reference(model);
        TextConfig config = parse(ref.get("config_json"));
        JsonNode bits = ref.get("inv_freq_bits");
        List<String> offByOneUlp = new ArrayList<>();
        for (AttentionType type : AttentionType.values()) {
            LayerSpec layer = config.layers().stream().filter(l -> l.attentionType() == type).findFirst().orElseThrow();
            JsonNode expected = bits.get(type.configName());
            float[] actual = layer.inverseFrequencies();
            assertEquals(expected.size(), actual.length, model + " " + type);
            for (int i = 0; i < actual.length; i++) {
                int want = expected.get(i).intValue();
                int got = Float.floatToRawIntBits(actual[i]);
                if (want != got) {
                    assertEquals(1, Math.abs(want - got), model + " " + type + " inv_freq[" + i + "]: want "
                            + Float.intBitsToFloat(want) + " got " + actual[i]);
                    offByOneUlp.add(type + " " + i);
                }
            }
        }
        // torch's CPU pow (SLEEF powf, <= 1 ulp) misses the correctly rounded power in exactly these two
        // entries; everything else is bit for bit. See RopeSpec.inverseFrequencies.
        assertEquals(List.of("SLIDING 111", "FULL 29"), offByOneUlp, model);
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma-4-31b", "gemma-4-26b-a4b", "gemma-4-e4b", "gemma-4-e2b"})
    void expectedTensorsAreTheStateDict(String model) throws IOException {
        JsonNode ref = reference(model);
        TextConfig config = parse(ref.get("config_json"));
        Map<String, List<Long>> stateDict = new TreeMap<>();
        ref.get("state_dict_shapes").properties().forEach(e -> {
            List<Long> shape = new ArrayList<>();
            e.getValue().forEach(d -> shape.add(d.longValue()));
            stateDict.put(e.getKey(), shape);
        });
        // state_dict() lists the tied lm_head too; checkpoints do not store it.
        assertTrue(config.tieWordEmbeddings());
        stateDict.remove(WeightNames.LM_HEAD);
        Map<String, List<Long>> expected = new TreeMap<>();
        for (ExpectedTensor t : WeightNames.expectedTensors(config)) {
            List<Long> shape = new ArrayList<>();
            for (long d : t.shape()) {
                shape.add(d);
            }
            expected.put(t.name(), shape);
        }
        assertEquals(stateDict, expected);
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma-4-31b", "gemma-4-26b-a4b", "gemma-4-e4b", "gemma-4-e2b"})
    void embeddingScalesMatchTheBf16Buffers(String model) throws IOException {
        JsonNode ref = reference(model);
        TextConfig config = parse(ref.get("config_json"));
        assertEquals(ref.get("embed_scale_bf16").floatValue(), config.embeddingScale(DType.BF16));
        assertEquals(ref.get("embed_scale_bf16").floatValue(), config.embeddingScale());
        if (config.hasPerLayerEmbeddings()) {
            assertEquals(ref.get("per_layer_embed_scale_bf16").floatValue(), config.perLayerEmbeddingScale());
        }
    }

    @Test
    void multimodalConfigReadsTheDecoderFromTextConfig() throws IOException {
        JsonNode ref = reference("gemma-4-e2b-multimodal");
        TextConfig config = TextConfig.parse(ref.get("config_json").toString(), null);
        assertEquals(ModelType.GEMMA4, config.modelType());
        assertEquals("model.language_model.", config.tensorPrefix());
        assertEquals(BundledConfigs.load("gemma-4-e2b").layers(), config.layers());
        Set<String> names = new HashSet<>();
        ref.get("state_dict_names").forEach(n -> names.add(n.textValue()));
        Set<String> expected = new HashSet<>();
        WeightNames.expectedTensors(config).forEach(t -> expected.add(t.name()));
        assertEquals(names, expected);
    }

    @Test
    void referencesCoverWhatTheyShould() throws IOException {
        Map<String, Integer> fullHeadDims = new HashMap<>();
        for (String m : BundledConfigs.NAMES) {
            TextConfig c = parse(reference(m).get("config_json"));
            fullHeadDims.put(m, c.layers().getLast().headDim());
        }
        assertEquals(Map.of("gemma-4-31b", 512, "gemma-4-26b-a4b", 512, "gemma-4-e4b", 512, "gemma-4-e2b", 512),
                fullHeadDims);
    }
}
