package io.jemma.engine;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The small Gemma 4 checkpoint shipped inside Jemma, served when no model is configured so that a fresh
 * clone starts a working server: a chat model trained by the project on synthetic tasks (tools/train,
 * docs/embedded-model.md), and its gemma4_assistant drafter ({@code jemma.speculative-draft-model-path=embedded}).
 * They live on the classpath; the safetensors reader maps files, so they are copied to a temporary directory
 * first.
 */
final class EmbeddedModel {
    static final String NAME = "jemma-embedded";
    static final String ASSISTANT_NAME = "jemma-embedded-assistant";

    private EmbeddedModel() {
    }

    static Path extract() {
        return extract("embedded-model", "the embedded model");
    }

    /** The assistant's checkpoint (config.json, model.safetensors, generation_config.json). */
    static Path extractAssistant() {
        return extract("embedded-model-assistant", "the embedded assistant");
    }

    /** Copies the files that {@code /NAME.files} lists from the resource folder {@code /NAME/}. */
    private static Path extract(String name, String what) {
        try {
            Path dir = Files.createTempDirectory("jemma-" + name);
            dir.toFile().deleteOnExit();
            for (String file : fileList(name, what)) {
                try (InputStream in = EmbeddedModel.class.getResourceAsStream("/" + name + "/" + file)) {
                    if (in == null) {
                        throw new IllegalStateException(what + " lacks " + file);
                    }
                    Path target = dir.resolve(file);
                    Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
                    target.toFile().deleteOnExit();
                }
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot unpack " + what, e);
        }
    }

    private static String[] fileList(String name, String what) throws IOException {
        try (InputStream in = EmbeddedModel.class.getResourceAsStream("/" + name + ".files")) {
            if (in == null) {
                throw new IllegalStateException("no " + what.substring("the ".length()) + " in this build (" + name
                        + ".files is missing)");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().map(String::strip)
                    .filter(l -> !l.isEmpty() && !l.startsWith("#")).toArray(String[]::new);
        }
    }
}
