package io.jemma.engine;

import io.jemma.backend.Backend;
import io.jemma.model.Gemma4Model;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import io.jemma.model.weights.LoadProgress;
import io.jemma.tokenizer.ChatTemplate;
import io.jemma.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.util.Optional;

/**
 * Everything a model directory holds, loaded: config, weights on a backend, tokenizer and (when the
 * checkpoint has one) its chat template.
 */
public record LoadedModel(Path directory, TextConfig config, Gemma4Model model, Tokenizer tokenizer,
                          Optional<ChatTemplate> chatTemplate) implements AutoCloseable {

    public static LoadedModel load(Path directory, Backend backend) {
        return load(directory, backend, LoadProgress.NONE);
    }

    /** @param progress told how many checkpoint bytes have been mapped and checked so far */
    public static LoadedModel load(Path directory, Backend backend, LoadProgress progress) {
        TextConfig config = TextConfig.load(directory);
        Tokenizer tokenizer = Tokenizer.load(directory);
        Checkpoint checkpoint = Checkpoint.open(directory, progress);
        Gemma4Model model = new Gemma4Model(config, checkpoint, backend);
        return new LoadedModel(directory, config, model, tokenizer, ChatTemplate.forModel(directory));
    }

    @Override
    public void close() {
        model.close();
    }
}
