package io.jemma.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jemma.api.dto.Usage;
import io.jemma.engine.EngineRejection;
import io.jemma.engine.GenerationChunk;
import io.jemma.engine.GenerationRequest;
import io.jemma.engine.InferenceEngine;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.vertx.core.buffer.Buffer;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.RestMulti;

import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Runs the choices of a request on the engine and writes the response: a Server-Sent Events stream
 * ({@code data: <json>\n\n} events, {@code data: [DONE]} last) or one JSON object. Both are a
 * {@link RestMulti} of bytes whose Content-Type is set here, so the framing is exactly ours.
 * <p>
 * A failure before anything was sent (the engine's queue is full, say) goes through the exception
 * mappers and becomes an HTTP error; after the first event it is sent as {@code data: {"error": ...}}
 * and {@code [DONE]}. When the client goes away, Quarkus cancels the subscription, which cancels every
 * choice's engine stream and frees its KV pages.
 */
@ApplicationScoped
public class Generator {
    private static final Logger LOG = Logger.getLogger(Generator.class);
    static final String EVENT_STREAM = "text/event-stream";
    private static final byte[] DATA = "data: ".getBytes();
    private static final byte[] END = "\n\n".getBytes();
    private static final Buffer DONE = Buffer.buffer("data: [DONE]\n\n");

    @Inject
    InferenceEngine engine;

    @Inject
    ObjectMapper json;

    /**
     * @param requests     one per choice, in choice-index order
     * @param promptTokens the usage's prompt_tokens (each distinct prompt once)
     * @param promptParam  "messages" or "prompt", for the engine's prompt-length refusals
     */
    RestMulti<Buffer> respond(List<GenerationRequest> requests, int promptTokens, Shape shape, Settings settings,
                              String promptParam) {
        List<Multi<GenerationChunk>> streams = new ArrayList<>(requests.size());
        for (GenerationRequest r : requests) {
            streams.add(start(r, promptParam));
        }
        List<ChoiceState> choices = new ArrayList<>(requests.size());
        for (int i = 0; i < requests.size(); i++) {
            choices.add(new ChoiceState(i));
        }
        if (settings.stream()) {
            return RestMulti.fromMultiData(stream(streams, choices, promptTokens, shape, settings.includeUsage()))
                    .header("Content-Type", EVENT_STREAM)
                    .header("Cache-Control", "no-cache")
                    .header("X-Accel-Buffering", "no")
                    .build();
        }
        return RestMulti.fromMultiData(whole(streams, choices, promptTokens, shape).toMulti())
                .header("Content-Type", "application/json")
                .build();
    }

    private Multi<GenerationChunk> start(GenerationRequest r, String promptParam) {
        try {
            return engine.generate(r);
        } catch (EngineRejection e) {
            if ("messages".equals(e.param()) && !promptParam.equals("messages")) {
                throw new EngineRejection(e.status(), e.code(), promptParam, e.getMessage(), e.retryAfterSeconds());
            }
            throw e;
        }
    }

    private Multi<Buffer> stream(List<Multi<GenerationChunk>> streams, List<ChoiceState> choices, int promptTokens,
                                 Shape shape, boolean includeUsage) {
        Executor worker = Infrastructure.getDefaultExecutor();
        List<Multi<Buffer>> parts = new ArrayList<>(streams.size());
        for (int i = 0; i < streams.size(); i++) {
            ChoiceState choice = choices.get(i);
            // Off the engine's threads before any JSON is written. emitOn lets a failure overtake items
            // still queued, so failures travel as items through the hop and are rethrown after it, in order.
            parts.add(streams.get(i).map(Delivery::chunk)
                    .onFailure().recoverWithItem(Delivery::failure)
                    .emitOn(worker)
                    .map(delivery -> {
                        GenerationChunk chunk = delivery.unwrap();
                        choice.accept(chunk);
                        List<Object> events = new ArrayList<>(3);
                        shape.events(choice, chunk, events);
                        return sse(events);
                    })
                    .filter(b -> b.length() > 0));
        }
        Multi<Buffer> body = parts.size() == 1 ? parts.getFirst()
                : Multi.createBy().merging().withConcurrency(parts.size()).streams(parts);
        Multi<Buffer> tail = Multi.createFrom().deferred(() -> {
            Buffer last = Buffer.buffer();
            if (includeUsage) {
                last.appendBuffer(sse(List.of(shape.usageEvent(usage(choices, promptTokens)))));
            }
            return Multi.createFrom().item(last.appendBuffer(DONE));
        });
        AtomicBoolean sent = new AtomicBoolean();
        return Multi.createBy().concatenating().streams(body, tail)
                .onItem().invoke(() -> sent.set(true))
                .onFailure(t -> sent.get()).recoverWithItem(t -> {
                    LOG.warnf(t, "a stream failed after it started");
                    return sse(List.of(Errors.inStream(t))).appendBuffer(DONE);
                });
    }

    private Uni<Buffer> whole(List<Multi<GenerationChunk>> streams, List<ChoiceState> choices, int promptTokens,
                              Shape shape) {
        List<Uni<ChoiceState>> results = new ArrayList<>(streams.size());
        for (int i = 0; i < streams.size(); i++) {
            ChoiceState choice = choices.get(i);
            results.add(streams.get(i).collect().in(() -> choice, ChoiceState::accept));
        }
        return Uni.join().all(results).andFailFast()
                .emitOn(Infrastructure.getDefaultExecutor())
                .map(done -> Buffer.buffer(write(shape.whole(done, usage(done, promptTokens)))));
    }

    private static Usage usage(List<ChoiceState> choices, int promptTokens) {
        int completion = 0;
        for (ChoiceState c : choices) {
            completion += c.completionTokens;
        }
        return Usage.of(promptTokens, completion);
    }

    private Buffer sse(List<Object> events) {
        Buffer b = Buffer.buffer();
        for (Object e : events) {
            b.appendBytes(DATA).appendBytes(write(e)).appendBytes(END);
        }
        return b;
    }

    private byte[] write(Object value) {
        try {
            return json.writeValueAsBytes(value);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A chunk or the failure that ended a stream, carried in order across a thread hop. */
    private record Delivery(GenerationChunk chunk, Throwable failure) {
        static Delivery chunk(GenerationChunk c) {
            return new Delivery(c, null);
        }

        static Delivery failure(Throwable t) {
            return new Delivery(null, t);
        }

        GenerationChunk unwrap() {
            if (failure instanceof RuntimeException e) {
                throw e;
            }
            if (failure != null) {
                throw new IllegalStateException(failure);
            }
            return chunk;
        }
    }
}
