package io.jemma.api;

/** Bounds the API puts on requests (documented in docs/configuration.md). */
final class Limits {
    /** Choices per request (n); for a list of prompts, prompts x n. */
    static final int MAX_CHOICES = 16;
    /** Prompts in one completions request. */
    static final int MAX_PROMPTS = 16;
    /** Stop strings per request, and characters per stop string. */
    static final int MAX_STOP_STRINGS = 16;
    static final int MAX_STOP_LENGTH = 1000;
    /** stop_token_ids entries. */
    static final int MAX_STOP_TOKEN_IDS = 256;
    /** OpenAI's upper bound for temperature. */
    static final double MAX_TEMPERATURE = 2;
    /** Chat top_logprobs and completions logprobs, as OpenAI bounds them. */
    static final int MAX_CHAT_TOP_LOGPROBS = 20;
    static final int MAX_COMPLETION_LOGPROBS = 5;

    private Limits() {
    }
}
