package io.jemma.model.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * A Gemma 4 assistant ({@code model_type: gemma4_assistant}, transformers' {@code Gemma4AssistantConfig}): the
 * multi-token-prediction drafter of a Gemma 4 target. A small decoder whose layers keep no KV of their own but
 * attend to the target's, fed {@code concat(target_embed(token) * sqrt(backbone), h)} through
 * {@code pre_projection}; {@code post_projection} maps its output back to the target's width for the next step.
 *
 * @param decoder               the decoder under {@code text_config}, parsed as if unshared (layer geometry,
 *                              tensor names {@code model.*}); {@link #layersFor} binds its layers to the target
 * @param backboneHiddenSize    the target's hidden size the assistant was trained with
 * @param useOrderedEmbeddings  the E2B/E4B head: logits only for the tokens of the top
 *                              {@code centroidTopK} of {@code numCentroids} clusters ({@code token_ordering})
 * @param numCentroids          clusters of the ordered vocabulary
 * @param centroidTopK          clusters scored per token
 */
public record AssistantConfig(TextConfig decoder, int backboneHiddenSize, boolean useOrderedEmbeddings,
                              int numCentroids, int centroidTopK) {

    public static final String MODEL_TYPE = "gemma4_assistant";
    // Gemma4AssistantConfig's defaults (transformers 5.17).
    static final int DEFAULT_BACKBONE_HIDDEN_SIZE = 1536;
    static final int DEFAULT_NUM_CENTROIDS = 2048;
    static final int DEFAULT_CENTROID_TOP_K = 32;

    public AssistantConfig {
        if (backboneHiddenSize <= 0) {
            throw new ConfigException("backbone_hidden_size must be positive, got " + backboneHiddenSize);
        }
        if (useOrderedEmbeddings) {
            if (numCentroids <= 0 || decoder.vocabSize() % numCentroids != 0) {
                throw new ConfigException("num_centroids " + numCentroids + " must divide vocab_size "
                        + decoder.vocabSize() + " (the ordered vocabulary is cut into equal clusters)");
            }
            if (centroidTopK <= 0 || centroidTopK > numCentroids) {
                throw new ConfigException("centroid_intermediate_top_k must be in [1, num_centroids = "
                        + numCentroids + "], got " + centroidTopK);
            }
        }
    }

    /** Reads {@code config.json} of an assistant checkpoint directory. */
    public static AssistantConfig load(Path dir) {
        Path file = dir.resolve("config.json");
        if (!Files.isRegularFile(file)) {
            throw new ConfigException(file + ": missing (jemma.speculative-draft-model-path must be a gemma4_assistant "
                    + "checkpoint directory)");
        }
        try {
            return ConfigParser.parseAssistant(Files.readString(file), file.toString());
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read: " + e, e);
        }
    }

    public static AssistantConfig parse(String configJson) {
        return ConfigParser.parseAssistant(configJson, "config.json");
    }

    /** Tokens per cluster of the ordered vocabulary. */
    public int tokensPerCentroid() {
        return decoder.vocabSize() / numCentroids;
    }

    /**
     * The assistant's layers bound to a target: each is KV-shared and reads the target layer that owns the KV of
     * the target's last layer of the same attention type (transformers passes the target's {@code shared_kv_states}
     * of its last sliding and last full layer; in a target with KV-shared layers of its own those resolve to the
     * layers they read). A {@link ConfigException} says why an assistant does not fit the target: its backbone
     * width, its vocabulary, or an attention geometry that differs from the KV it would read.
     */
    public List<LayerSpec> layersFor(TextConfig target) {
        if (backboneHiddenSize != target.hiddenSize()) {
            throw new ConfigException("the assistant was trained for a target of hidden size " + backboneHiddenSize
                    + " (backbone_hidden_size) but the served model's hidden_size is " + target.hiddenSize());
        }
        if (decoder.vocabSize() != target.vocabSize()) {
            throw new ConfigException("the assistant's vocab_size " + decoder.vocabSize()
                    + " differs from the served model's " + target.vocabSize());
        }
        Map<AttentionType, LayerSpec> source = new EnumMap<>(AttentionType.class);
        for (LayerSpec s : target.layers()) {
            source.put(s.attentionType(), target.layer(s.kvSourceLayer())); // the last of each type wins
        }
        List<LayerSpec> out = new ArrayList<>();
        for (LayerSpec a : decoder.layers()) {
            String where = "assistant layer " + a.index() + " (" + a.attentionType().configName() + ")";
            LayerSpec kv = source.get(a.attentionType());
            if (kv == null) {
                throw new ConfigException(where + ": the served model has no " + a.attentionType().configName()
                        + " layer whose KV it could read");
            }
            if (kv.headDim() != a.headDim() || kv.numKvHeads() != a.numKvHeads()) {
                throw new ConfigException(where + ": head dim " + a.headDim() + " / " + a.numKvHeads()
                        + " KV heads, but the KV it reads (target layer " + kv.index() + ") has " + kv.headDim()
                        + " / " + kv.numKvHeads());
            }
            if (a.isSliding() && a.slidingWindow() > kv.slidingWindow()) {
                throw new ConfigException(where + ": sliding window " + a.slidingWindow() + " is wider than the "
                        + "served model's " + kv.slidingWindow() + ", whose cache does not keep that much");
            }
            out.add(new LayerSpec(a.index(), a.attentionType(), a.headDim(), a.numHeads(), a.numKvHeads(), false, true,
                    kv.index(), a.slidingWindow(), a.mlpWidth(), a.rope(), false));
        }
        return List.copyOf(out);
    }
}
