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
 * docs/embedded-model.md). It lives on the classpath; the safetensors reader maps files, so it is
 * copied to a temporary directory first.
 */
final class EmbeddedModel {
    static final String NAME = "jemma-embedded";
    private static final String ROOT = "/embedded-model/";

    private EmbeddedModel() {
    }

    static Path extract() {
        try {
            Path dir = Files.createTempDirectory("jemma-embedded-model");
            dir.toFile().deleteOnExit();
            for (String file : fileList()) {
                try (InputStream in = EmbeddedModel.class.getResourceAsStream(ROOT + file)) {
                    if (in == null) {
                        throw new IllegalStateException("the embedded model lacks " + file);
                    }
                    Path target = dir.resolve(file);
                    Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
                    target.toFile().deleteOnExit();
                }
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot unpack the embedded model", e);
        }
    }

    private static String[] fileList() throws IOException {
        try (InputStream in = EmbeddedModel.class.getResourceAsStream("/embedded-model.files")) {
            if (in == null) {
                throw new IllegalStateException("no embedded model in this build (embedded-model.files is missing)");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().map(String::strip)
                    .filter(l -> !l.isEmpty() && !l.startsWith("#")).toArray(String[]::new);
        }
    }
}
