package io.jemma.api;

import io.jemma.engine.FinishReason;
import io.jemma.engine.GenerationChunk;
import io.jemma.engine.TokenLogprob;

import java.util.ArrayList;
import java.util.List;

/**
 * One choice while it is generated: its text, logprobs and token counts so far, and for streaming
 * whether its first chunk has gone out. Updated from one thread at a time (the choice's stream).
 */
final class ChoiceState {
    final int index;
    final StringBuilder text = new StringBuilder();
    final List<TokenLogprob> logprobs = new ArrayList<>();
    /** Offset into {@link #text} where each logprob's token begins (the text of its chunk). */
    final List<Integer> textOffsets = new ArrayList<>();
    boolean started;
    int completionTokens;
    FinishReason finishReason;
    /** Length of {@link #text} before the last chunk: where that chunk's text starts. */
    int lastChunkOffset;

    ChoiceState(int index) {
        this.index = index;
    }

    ChoiceState accept(GenerationChunk chunk) {
        lastChunkOffset = text.length();
        text.append(chunk.text());
        for (TokenLogprob lp : chunk.logprobs()) {
            logprobs.add(lp);
            textOffsets.add(lastChunkOffset);
        }
        completionTokens = chunk.completionTokens();
        if (chunk.finishReason() != null) {
            finishReason = chunk.finishReason();
        }
        return this;
    }

    /** The OpenAI finish_reason; a choice whose stream ended without one was aborted. */
    String finishReasonName() {
        return (finishReason == null ? FinishReason.ABORT : finishReason).openAiName();
    }
}
