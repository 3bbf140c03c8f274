package io.jemma.model.config;

import org.junit.jupiter.api.Test;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** gemma4_assistant configs: parsing, transformers' architecture rules, and binding to a target. */
class AssistantConfigTest {

    private static Path golden(String name) throws URISyntaxException {
        return Path.of(AssistantConfigTest.class.getResource("/golden/" + name).toURI());
    }

    @Test
    void theBundled31bAssistantReadsTheLastSlidingAndFullLayersOfThe31b() {
        AssistantConfig a = BundledConfigs.loadAssistant(BundledConfigs.GEMMA_4_31B_ASSISTANT);
        TextConfig target = BundledConfigs.load(BundledConfigs.GEMMA_4_31B);
        assertEquals(5376, a.backboneHiddenSize());
        assertFalse(a.useOrderedEmbeddings());
        assertEquals(1024, a.decoder().hiddenSize());
        List<LayerSpec> layers = a.layersFor(target);
        assertEquals(4, layers.size());
        for (LayerSpec l : layers) {
            assertTrue(l.kvShared());
            assertEquals(32, l.numHeads());
            assertEquals(l.isFull() ? 4 : 16, l.numKvHeads());
            assertEquals(l.isFull() ? 512 : 256, l.headDim());
            assertEquals(l.isFull() ? 59 : 58, l.kvSourceLayer());
            assertEquals(8192, l.mlpWidth());
            assertEquals(l.isFull() ? 0 : 1024, l.slidingWindow());
        }
        assertEquals(List.of(false, false, false, true), layers.stream().map(LayerSpec::isFull).toList());
    }

    @Test
    void anAssistantOfAnotherWidthOrVocabularyDoesNotFit() {
        AssistantConfig a = BundledConfigs.loadAssistant(BundledConfigs.GEMMA_4_31B_ASSISTANT);
        ConfigException e = assertThrows(ConfigException.class,
                () -> a.layersFor(BundledConfigs.load(BundledConfigs.GEMMA_4_E4B)));
        assertTrue(e.getMessage().contains("backbone_hidden_size") && e.getMessage().contains("5376")
                && e.getMessage().contains("2560"), e.getMessage());
        AssistantConfig smallVocab = AssistantConfig.parse(BundledConfigs.json(BundledConfigs.GEMMA_4_31B_ASSISTANT)
                .replace("\"vocab_size\": 262144", "\"vocab_size\": 256000"));
        e = assertThrows(ConfigException.class, () -> smallVocab.layersFor(BundledConfigs.load(BundledConfigs.GEMMA_4_31B)));
        assertTrue(e.getMessage().contains("vocab_size 256000"), e.getMessage());
    }

    @Test
    void theGoldenE4bAssistantHasTheCentroidHeadAndReadsTheSharedTargetsSources() throws Exception {
        AssistantConfig a = AssistantConfig.load(golden("tiny-e4b-assistant"));
        assertTrue(a.useOrderedEmbeddings());
        assertEquals(16, a.numCentroids());
        assertEquals(4, a.centroidTopK());
        assertEquals(32, a.tokensPerCentroid());
        // tiny-e4b's last layers are KV-shared themselves: the assistant reads what they read (3 sliding, 4 full).
        List<LayerSpec> layers = a.layersFor(TextConfig.load(golden("tiny-e4b")));
        assertEquals(List.of(3, 3, 3, 4), layers.stream().map(LayerSpec::kvSourceLayer).toList());
    }

    @Test
    void transformersArchitectureRulesAreStartupErrors() {
        String json = BundledConfigs.json(BundledConfigs.GEMMA_4_31B_ASSISTANT);
        fails(json.replace("\"num_kv_shared_layers\": 4", "\"num_kv_shared_layers\": 2"), "num_kv_shared_layers must be 4");
        fails(json.replace("\"hidden_size_per_layer_input\": 0", "\"hidden_size_per_layer_input\": 256"),
                "hidden_size_per_layer_input must be 0");
        fails(json.replace("\"enable_moe_block\": false", "\"enable_moe_block\": true"), "enable_moe_block");
        fails(json.replace("\"use_ordered_embeddings\": false", "\"use_ordered_embeddings\": true, \"num_centroids\": 3000"),
                "num_centroids 3000 must divide vocab_size 262144");
        fails(json.replace("\"gemma4_assistant\"", "\"gemma4_text\""), "not gemma4_assistant");
        fails("{\"model_type\": \"gemma4_assistant\"}", "text_config");
        // An unset num_kv_shared_layers means all layers, as Gemma4AssistantConfig.__post_init__ has it.
        assertEquals(4, AssistantConfig.parse(json.replace("\"num_kv_shared_layers\": 4,", "")).decoder().numHiddenLayers());
    }

    @Test
    void aMissingDirectoryOrConfigSaysWhatIsExpected() throws Exception {
        Path empty = Files.createTempDirectory("no-assistant");
        ConfigException e = assertThrows(ConfigException.class, () -> AssistantConfig.load(empty));
        assertTrue(e.getMessage().contains("speculative-draft-model-path"), e.getMessage());
        e = assertThrows(ConfigException.class, () -> AssistantConfig.load(golden("tiny-31b")));
        assertTrue(e.getMessage().contains("not gemma4_assistant"), e.getMessage());
    }

    private static void fails(String json, String message) {
        ConfigException e = assertThrows(ConfigException.class, () -> AssistantConfig.parse(json));
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }
}
