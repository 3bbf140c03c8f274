package io.jemma.api;

import io.jemma.engine.EngineStats;
import io.jemma.engine.GenerationChunk;
import io.jemma.engine.GenerationRequest;
import io.jemma.engine.InferenceEngine;
import io.jemma.engine.ModelCard;
import io.jemma.tokenizer.ChatTemplate;
import io.jemma.tokenizer.Tokenizer;
import io.smallrye.mutiny.Multi;
import jakarta.enterprise.inject.Vetoed;

import java.util.Optional;
import java.util.function.Function;

/**
 * The real engine with failures put in on purpose (installed with QuarkusMock for one test): whatever
 * a field says overrides the engine's answer.
 */
@Vetoed
class FakeEngine extends InferenceEngine {
    private final InferenceEngine real;
    /** How generate behaves; by default, as the real engine does. */
    Function<GenerationRequest, Multi<GenerationChunk>> generate;
    /** Thrown by model(), tokenizer() and chatTemplate() when set (the engine does so while not ready). */
    RuntimeException notReady;
    Boolean loaded;
    Throwable loadFailure;
    boolean draining;
    boolean saturated;
    Boolean schedulerAlive;
    Long schedulerSilenceNanos;

    FakeEngine(InferenceEngine real) {
        this.real = real;
        this.generate = real::generate;
    }

    @Override
    public Multi<GenerationChunk> generate(GenerationRequest request) {
        return generate.apply(request);
    }

    @Override
    public boolean loaded() {
        return loaded != null ? loaded : real.loaded();
    }

    @Override
    public Optional<Throwable> loadFailure() {
        return loadFailure != null ? Optional.of(loadFailure) : real.loadFailure();
    }

    @Override
    public boolean draining() {
        return draining || real.draining();
    }

    @Override
    public void startDraining() {
        draining = true;
    }

    @Override
    public boolean saturated() {
        return saturated || real.saturated();
    }

    @Override
    public long schedulerSilenceNanos() {
        return schedulerSilenceNanos != null ? schedulerSilenceNanos : real.schedulerSilenceNanos();
    }

    @Override
    public boolean schedulerAlive() {
        return schedulerAlive != null ? schedulerAlive : real.schedulerAlive();
    }

    @Override
    public ModelCard model() {
        check();
        return real.model();
    }

    @Override
    public Optional<String> modelId() {
        return notReady != null ? Optional.empty() : real.modelId();
    }

    @Override
    public Tokenizer tokenizer() {
        check();
        return real.tokenizer();
    }

    @Override
    public int vocabSize() {
        check();
        return real.vocabSize();
    }

    @Override
    public Optional<ChatTemplate> chatTemplate() {
        check();
        return real.chatTemplate();
    }

    @Override
    public int contextLength() {
        return real.contextLength();
    }

    @Override
    public int defaultMaxTokens() {
        return real.defaultMaxTokens();
    }

    @Override
    public EngineStats stats() {
        return real.stats();
    }

    private void check() {
        if (notReady != null) {
            throw notReady;
        }
    }
}
