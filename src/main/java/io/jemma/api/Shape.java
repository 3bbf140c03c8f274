package io.jemma.api;

import io.jemma.api.dto.Usage;
import io.jemma.engine.GenerationChunk;

import java.util.List;

/** How an endpoint writes its results: stream events per engine chunk, or one whole response. */
interface Shape {
    /** Adds the events (zero or more) that this chunk of a choice makes; the state already holds the chunk. */
    void events(ChoiceState choice, GenerationChunk chunk, List<Object> out);

    /** The last event when stream_options.include_usage is set: no choices, the usage. */
    Object usageEvent(Usage usage);

    /** The non-streamed response. */
    Object whole(List<ChoiceState> choices, Usage usage);
}
