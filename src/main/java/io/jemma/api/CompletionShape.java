package io.jemma.api;

import io.jemma.api.dto.Completion;
import io.jemma.api.dto.CompletionLogprobs;
import io.jemma.api.dto.Usage;
import io.jemma.engine.GenerationChunk;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Text completions: a text_completion object per chunk with text (the last one with the finish reason), or one whole. */
record CompletionShape(String id, long created, String model, boolean logprobs) implements Shape {

    @Override
    public void events(ChoiceState choice, GenerationChunk chunk, List<Object> out) {
        boolean withLogprobs = logprobs && !chunk.logprobs().isEmpty();
        if (chunk.text().isEmpty() && !withLogprobs && !chunk.last()) {
            return;
        }
        CompletionLogprobs lp = withLogprobs ? LogprobShapes.completion(chunk.logprobs(),
                Collections.nCopies(chunk.logprobs().size(), choice.lastChunkOffset)) : null;
        out.add(new Completion(id, created, model, List.of(new Completion.Choice(choice.index, chunk.text(), lp,
                chunk.last() ? choice.finishReasonName() : null)), null));
    }

    @Override
    public Object usageEvent(Usage usage) {
        return new Completion(id, created, model, List.of(), usage);
    }

    @Override
    public Object whole(List<ChoiceState> choices, Usage usage) {
        List<Completion.Choice> out = new ArrayList<>();
        for (ChoiceState c : choices) {
            out.add(new Completion.Choice(c.index, c.text.toString(),
                    logprobs ? LogprobShapes.completion(c.logprobs, c.textOffsets) : null, c.finishReasonName()));
        }
        return new Completion(id, created, model, out, usage);
    }
}
