package io.jemma.engine;

import io.jemma.attention.KvGeometry;
import io.jemma.backend.Backend;
import io.jemma.model.KvBudget;
import io.jemma.model.Gemma4Model;
import io.jemma.model.WeightSource;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import io.jemma.model.weights.LoadProgress;
import io.jemma.tokenizer.ChatTemplate;
import io.jemma.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Function;

/**
 * Everything a model directory holds, loaded: config, weights on a backend, tokenizer and (when the
 * checkpoint has one) its chat template.
 */
public record LoadedModel(Path directory, TextConfig config, Gemma4Model model, Tokenizer tokenizer,
                          Optional<ChatTemplate> chatTemplate) implements AutoCloseable {

    /** Loads a model for one sequence at a time of up to {@code maxLength} positions (the CLI). */
    public static LoadedModel load(Path directory, Backend backend, int maxLength) {
        return load(directory, backend, LoadProgress.NONE, kv -> kv.forSequences(1, maxLength, 16, maxLength));
    }

    /**
     * @param progress told how many checkpoint bytes have been mapped and checked so far
     * @param kvSizing how much KV memory to hold, given what a token costs for this model and backend
     */
    public static LoadedModel load(Path directory, Backend backend, LoadProgress progress,
                                   Function<KvBudget, KvGeometry> kvSizing) {
        TextConfig config = TextConfig.load(directory);
        Tokenizer tokenizer = Tokenizer.load(directory);
        KvGeometry kv = kvSizing.apply(KvBudget.of(config, backend));
        Checkpoint checkpoint = Checkpoint.open(directory, progress);
        Gemma4Model model = new Gemma4Model(config, checkpoint, backend, kv);
        return new LoadedModel(directory, config, model, tokenizer, ChatTemplate.forModel(directory));
    }

    /**
     * A model with dummy weights ({@code jemma.load-format=dummy}) at the shapes of {@code config}, generated
     * by the backend (on the GPU for CUDA) from {@code seed}; the tokenizer and chat template come from
     * {@code tokenizerDirectory} (the model directory when it has a tokenizer.json, else the embedded
     * model's).
     *
     * @param directory where the config came from (null for a bundled config)
     */
    public static LoadedModel dummy(Path directory, TextConfig config, Path tokenizerDirectory, Backend backend,
                                    long seed, Function<KvBudget, KvGeometry> kvSizing) {
        Tokenizer tokenizer = Tokenizer.load(tokenizerDirectory);
        KvGeometry kv = kvSizing.apply(KvBudget.of(config, backend));
        Gemma4Model model = new Gemma4Model(config, WeightSource.dummy(config, seed), backend, kv);
        return new LoadedModel(directory, config, model, tokenizer, ChatTemplate.forModel(tokenizerDirectory));
    }

    @Override
    public void close() {
        model.close();
    }
}
