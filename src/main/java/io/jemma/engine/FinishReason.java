package io.jemma.engine;

/** Why a sequence ended, as the OpenAI API names it. */
public enum FinishReason {
    /** EOS, a stop token or a stop string. */
    STOP("stop"),
    /** max_tokens reached. */
    LENGTH("length"),
    /** The client went away or the request was cancelled. */
    ABORT("abort");

    private final String openAiName;

    FinishReason(String openAiName) {
        this.openAiName = openAiName;
    }

    public String openAiName() {
        return openAiName;
    }
}
