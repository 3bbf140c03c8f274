package io.jemma.engine;

import io.jemma.engine.sampling.LogitsProcessor;
import io.jemma.engine.sampling.Sampler;
import io.jemma.tokenizer.IncrementalDetokenizer;
import io.jemma.tokenizer.Tokenizer;
import io.smallrye.mutiny.subscription.MultiEmitter;

/** A request inside the engine: its progress through prefill and decode, and where its chunks go. */
final class Sequence {
    final int id;
    final GenerationRequest request;
    final int[] prompt;
    final Sampler sampler;
    final LogitsProcessor logits;
    final IncrementalDetokenizer detokenizer;
    final StopStrings stops;
    final MultiEmitter<? super GenerationChunk> emitter;
    final long arrivalNanos = System.nanoTime();

    /** Prompt tokens already run through the model. */
    int prefilled;
    /** Tokens generated so far; the last one is the next decode input. */
    int generated;
    int lastToken = -1;
    /** Speculative decoding: the target's final-normed hidden state of the row that sampled lastToken. */
    float[] draftHidden;
    long admittedNanos;
    long lastTokenNanos;
    volatile boolean cancelled;

    Sequence(int id, GenerationRequest request, Tokenizer tokenizer, MultiEmitter<? super GenerationChunk> emitter) {
        this.id = id;
        this.request = request;
        this.prompt = request.promptIds();
        this.sampler = new Sampler(request.sampling());
        this.logits = new LogitsProcessor(request.penalties(), prompt);
        this.detokenizer = new IncrementalDetokenizer(tokenizer, request.skipSpecialTokens());
        this.stops = new StopStrings(request.stop());
        this.emitter = emitter;
    }

    boolean prefilling() {
        return prefilled < prompt.length;
    }

    /** Positions in the KV cache: the prompt so far, then every generated token fed back. */
    int cachedLength() {
        return prefilling() ? prefilled : prompt.length + generated - 1;
    }
}
