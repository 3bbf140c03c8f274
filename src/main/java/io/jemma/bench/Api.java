package io.jemma.bench;

/** The OpenAI-compatible endpoint a benchmark drives, and where its streamed text sits in each chunk. */
public enum Api {
    CHAT("/v1/chat/completions", "openai-chat"),
    COMPLETIONS("/v1/completions", "openai-completions");

    private final String path;
    private final String label;

    Api(String path, String label) {
        this.path = path;
        this.label = label;
    }

    /** The route under the base URL. */
    public String path() {
        return path;
    }

    /** What the result table prints as the backend (sglang prints its backend name there). */
    public String label() {
        return label;
    }

    static Api parse(String value) {
        return switch (value) {
            case "chat" -> CHAT;
            case "completions" -> COMPLETIONS;
            default -> throw new IllegalArgumentException("--backend-api must be chat or completions, not " + value);
        };
    }
}
