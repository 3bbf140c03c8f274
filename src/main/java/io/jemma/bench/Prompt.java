package io.jemma.bench;

/**
 * One benchmark request as the workload defines it (sglang's {@code DatasetRow}).
 *
 * @param text      the prompt text sent as the user message (chat) or the prompt (completions)
 * @param inputLen  its length in tokens as the workload counts it; the server's {@code usage.prompt_tokens}
 *                  replaces it in the figures when the server reports usage
 * @param outputLen the tokens asked for ({@code max_tokens}, with {@code ignore_eos})
 */
public record Prompt(String text, int inputLen, int outputLen) {

    public Prompt {
        if (outputLen < 1) {
            throw new IllegalArgumentException("output length must be at least 1, not " + outputLen);
        }
    }

    /** The same prompt asking for fewer tokens: warmup requests are kept short, as sglang keeps them to 32. */
    Prompt withOutputLen(int tokens) {
        return new Prompt(text, inputLen, tokens);
    }
}
