package io.jemma.engine;

import io.jemma.attention.KvGeometry;
import io.jemma.backend.Backend;
import io.jemma.model.KvBudget;
import io.jemma.model.Gemma4Model;
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
        KvGeometry kv = kvSizing.apply(new KvBudget(config, backend.kvBytesPerElement()));
        Checkpoint checkpoint = Checkpoint.open(directory, progress);
        Gemma4Model model = new Gemma4Model(config, checkpoint, backend, kv);
        return new LoadedModel(directory, config, model, tokenizer, ChatTemplate.forModel(directory));
    }

    @Override
    public void close() {
        model.close();
    }
}
