package io.jemma.model.config;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The released Gemma 4 text decoders' configurations, shipped as resources ({@code /configs/NAME.json},
 * gemma4_text style, shapes only) for dummy-weight benchmarks at true shapes.
 */
public final class BundledConfigs {

    public static final String GEMMA_4_31B = "gemma-4-31b";
    public static final String GEMMA_4_26B_A4B = "gemma-4-26b-a4b";
    public static final String GEMMA_4_E4B = "gemma-4-e4b";
    public static final String GEMMA_4_E2B = "gemma-4-e2b";
    public static final List<String> NAMES = List.of(GEMMA_4_31B, GEMMA_4_26B_A4B, GEMMA_4_E4B, GEMMA_4_E2B);
    /** The 31B's speculative-decoding assistant (gemma4_assistant, shapes only). */
    public static final String GEMMA_4_31B_ASSISTANT = "gemma-4-31b-assistant";
    public static final List<String> ASSISTANTS = List.of(GEMMA_4_31B_ASSISTANT);

    private BundledConfigs() {
    }

    /** The config.json text of {@code name}. */
    public static String json(String name) {
        String resource = "/configs/" + name + ".json";
        try (InputStream in = BundledConfigs.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalArgumentException("no bundled config " + name + " (known: " + NAMES + ", " + ASSISTANTS
                        + ")");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + resource, e);
        }
    }

    public static TextConfig load(String name) {
        return ConfigParser.parse(json(name), null, "configs/" + name + ".json");
    }

    /** A bundled assistant's config ({@link #ASSISTANTS}). */
    public static AssistantConfig loadAssistant(String name) {
        return ConfigParser.parseAssistant(json(name), "configs/" + name + ".json");
    }
}
