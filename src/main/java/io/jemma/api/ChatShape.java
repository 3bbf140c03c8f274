package io.jemma.api;

import io.jemma.api.dto.ChatCompletion;
import io.jemma.api.dto.ChatCompletionChunk;
import io.jemma.api.dto.ChatCompletionChunk.Delta;
import io.jemma.api.dto.ChatLogprobs;
import io.jemma.api.dto.Usage;
import io.jemma.engine.GenerationChunk;

import java.util.ArrayList;
import java.util.List;

/**
 * Chat completions: per choice, a first chunk with the assistant role, content chunks, and a chunk with
 * an empty delta and the finish reason; or one chat.completion object.
 */
record ChatShape(String id, long created, String model, boolean logprobs) implements Shape {

    @Override
    public void events(ChoiceState choice, GenerationChunk chunk, List<Object> out) {
        if (!choice.started) {
            choice.started = true;
            out.add(chunk(choice.index, new Delta("assistant", ""), null, null));
        }
        boolean withLogprobs = logprobs && !chunk.logprobs().isEmpty();
        if (!chunk.text().isEmpty() || withLogprobs) {
            out.add(chunk(choice.index, new Delta(null, chunk.text()),
                    withLogprobs ? LogprobShapes.chat(chunk.logprobs()) : null, null));
        }
        if (chunk.last()) {
            out.add(chunk(choice.index, Delta.EMPTY, null, choice.finishReasonName()));
        }
    }

    private ChatCompletionChunk chunk(int index, Delta delta, ChatLogprobs lp, String finishReason) {
        return new ChatCompletionChunk(id, created, model,
                List.of(new ChatCompletionChunk.Choice(index, delta, lp, finishReason)), null);
    }

    @Override
    public Object usageEvent(Usage usage) {
        return new ChatCompletionChunk(id, created, model, List.of(), usage);
    }

    @Override
    public Object whole(List<ChoiceState> choices, Usage usage) {
        List<ChatCompletion.Choice> out = new ArrayList<>();
        for (ChoiceState c : choices) {
            out.add(new ChatCompletion.Choice(c.index, new ChatCompletion.Message("assistant", c.text.toString()),
                    logprobs ? LogprobShapes.chat(c.logprobs) : null, c.finishReasonName()));
        }
        return new ChatCompletion(id, created, model, out, usage);
    }
}
