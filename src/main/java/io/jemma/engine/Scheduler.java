package io.jemma.engine;

import io.jemma.attention.ForwardBatch;
import io.jemma.attention.SequenceChunk;
import io.jemma.engine.sampling.SampleResult;
import io.jemma.engine.sampling.SamplingBatch;
import io.jemma.engine.sampling.SamplingRow;
import io.jemma.model.Gemma4Model;
import io.jemma.tokenizer.Tokenizer;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.subscription.BackPressureStrategy;
import org.jboss.logging.Logger;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Continuous batching on one thread. Every step admits waiting requests whose KV memory fits, runs one
 * forward over all running decodes plus prompt chunks up to the chunked-prefill budget, samples each
 * sequence with its own parameters, streams the new text out and retires finished sequences, freeing
 * their pages at once.
 */
final class Scheduler implements Runnable {
    private static final Logger LOG = Logger.getLogger(Scheduler.class);

    private final Gemma4Model model;
    private final Tokenizer tokenizer;
    private final Settings settings;
    private final EngineMetrics metrics;
    private final Set<Integer> eosIds;
    private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();
    private final AtomicInteger queued = new AtomicInteger();
    private final AtomicInteger runningCount = new AtomicInteger();
    /**
     * Deliveries to the request streams made during the current step. They are handed to the output
     * thread in one go at the end of the step, so the scheduler never waits on the HTTP side (in
     * sglang, detokenized output likewise leaves the scheduler for another process).
     */
    private List<Runnable> output = new ArrayList<>();
    private final ExecutorService outputThread = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "jemma-output");
        t.setDaemon(true);
        return t;
    });
    private volatile boolean stopped;
    private volatile long heartbeatNanos = System.nanoTime();
    private volatile long steps;

    /** The limits the scheduler enforces. */
    record Settings(int maxRunning, int maxQueued, int chunkedPrefill, long maxRequestNanos) {
        Settings(int maxRunning, int maxQueued, int chunkedPrefill) {
            this(maxRunning, maxQueued, chunkedPrefill, Long.MAX_VALUE);
        }
    }

    Scheduler(Gemma4Model model, Tokenizer tokenizer, Settings settings, Set<Integer> eosIds, EngineMetrics metrics) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.settings = settings;
        this.eosIds = Set.copyOf(eosIds);
        this.metrics = metrics;
    }

    /**
     * The stream of one sequence: queued when subscribed; failed with a 429 rejection when the queue is
     * full; cancelling the subscription aborts the sequence within one step.
     */
    Multi<GenerationChunk> generate(int id, GenerationRequest request) {
        return Multi.createFrom().<GenerationChunk>emitter(emitter -> {
            Sequence seq = new Sequence(id, request, tokenizer, emitter);
            emitter.onTermination(() -> {
                seq.cancelled = true;
                wake();
            });
            if (!submit(seq)) {
                emitter.fail(EngineRejection.queueFull(queuedCount()));
            }
        }, BackPressureStrategy.BUFFER);
    }

    /** Queues a sequence (called from request threads); false when the queue is full. */
    private boolean submit(Sequence s) {
        if (queued.incrementAndGet() > settings.maxQueued()) {
            queued.decrementAndGet();
            return false;
        }
        inbox.add(s);
        return true;
    }

    /** Wakes the loop so a cancellation is seen within one step. */
    void wake() {
        inbox.add(WAKE);
    }

    void stop() {
        stopped = true;
        wake();
    }

    int queuedCount() {
        return queued.get();
    }

    int runningCount() {
        return runningCount.get();
    }

    long heartbeatNanos() {
        return heartbeatNanos;
    }

    long steps() {
        return steps;
    }

    boolean idle() {
        return queued.get() == 0 && runningCount.get() == 0;
    }

    @Override
    public void run() {
        while (!stopped) {
            heartbeatNanos = System.nanoTime();
            try {
                takeInbox(running.isEmpty() && waiting.isEmpty());
                // The step's time counts from here: admission, batching, the forward, sampling,
                // detokenizing and handing chunks to the HTTP layer. Idle waiting is not counted.
                long stepStart = System.nanoTime();
                dropCancelled();
                admit();
                if (!running.isEmpty()) {
                    long forwardNanos = step();
                    flushOutput();
                    metrics.step(forwardNanos, System.nanoTime() - stepStart);
                }
                flushOutput();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            } catch (RuntimeException | Error e) {
                LOG.error("engine step failed; failing the running requests", e);
                for (Sequence s : List.copyOf(running)) {
                    fail(s, e);
                }
                flushOutput();
            }
        }
        for (Sequence s : List.copyOf(running)) {
            fail(s, EngineRejection.unavailable("the server is shutting down"));
        }
        for (Sequence s : waiting) {
            output.add(() -> s.emitter.fail(EngineRejection.unavailable("the server is shutting down")));
        }
        flushOutput();
        outputThread.shutdown();
    }

    /** Hands this step's deliveries to the output thread, in order. */
    private void flushOutput() {
        if (!output.isEmpty()) {
            List<Runnable> batch = output;
            output = new ArrayList<>();
            outputThread.execute(() -> batch.forEach(Runnable::run));
        }
    }

    /** Put in the inbox to wake the loop without a new request. */
    private static final Object WAKE = new Object();

    /** Moves new requests into the waiting queue; blocks briefly when there is nothing to do. */
    private void takeInbox(boolean idle) throws InterruptedException {
        List<Object> items = new ArrayList<>();
        if (idle) {
            Object first = inbox.poll(1, TimeUnit.SECONDS);
            if (first != null) {
                items.add(first);
            }
        }
        inbox.drainTo(items);
        for (Object o : items) {
            if (o instanceof Sequence s) {
                waiting.add(s);
            }
        }
    }

    private void dropCancelled() {
        waiting.removeIf(s -> {
            if (s.cancelled) {
                queued.decrementAndGet();
                metrics.aborted();
                return true;
            }
            return false;
        });
        for (Sequence s : List.copyOf(running)) {
            if (s.cancelled) {
                finish(s, FinishReason.ABORT, "");
            }
        }
    }

    /** First come, first served: stops at the first request whose pages do not fit yet. */
    private void admit() {
        while (running.size() < settings.maxRunning() && !waiting.isEmpty()) {
            Sequence s = waiting.peek();
            int chunk = Math.min(settings.chunkedPrefill(), s.prompt.length);
            if (!model.kvCache().reserve(s.id, s.request.maxLength(), chunk)) {
                break;
            }
            waiting.poll();
            queued.decrementAndGet();
            s.admittedNanos = System.nanoTime();
            metrics.queueTime(s.admittedNanos - s.arrivalNanos);
            metrics.prompt(s.prompt.length);
            running.add(s);
            runningCount.set(running.size());
        }
    }

    /** One forward over the running sequences; returns the nanoseconds the forward itself took. */
    private long step() {
        List<SequenceChunk> chunks = new ArrayList<>();
        List<Integer> ids = new ArrayList<>();
        List<Sequence> sampled = new ArrayList<>();
        List<Integer> logitRows = new ArrayList<>();
        int row = 0;
        for (Sequence s : running) {            // every decode first: one token each
            if (!s.prefilling()) {
                chunks.add(new SequenceChunk(s.id, s.cachedLength(), 1, row));
                ids.add(s.lastToken);
                sampled.add(s);
                logitRows.add(row++);
            }
        }
        int budget = settings.chunkedPrefill();
        List<Sequence> prefilled = new ArrayList<>();
        List<Integer> prefillTokens = new ArrayList<>();
        for (Sequence s : running) {            // then prompt chunks within the budget
            if (s.prefilling() && budget > 0) {
                int n = Math.min(budget, s.prompt.length - s.prefilled);
                chunks.add(new SequenceChunk(s.id, s.prefilled, n, row));
                for (int i = 0; i < n; i++) {
                    ids.add(s.prompt[s.prefilled + i]);
                }
                row += n;
                budget -= n;
                if (s.prefilled + n == s.prompt.length) {
                    sampled.add(s);
                    logitRows.add(row - 1);
                }
                prefilled.add(s);
                prefillTokens.add(n);
            }
        }
        int[] idArray = ids.stream().mapToInt(Integer::intValue).toArray();
        SamplingBatch sampling = new SamplingBatch(sampled.stream().map(this::samplingRow).toList());
        long start = System.nanoTime();
        // Sampling runs on the backend: on the GPU only the tokens (and asked-for logprobs) come back.
        SampleResult result = model.forwardAndSample(new ForwardBatch(chunks, row), idArray,
                logitRows.stream().mapToInt(Integer::intValue).toArray(), sampling);
        long forwardNanos = System.nanoTime() - start;
        for (int i = 0; i < prefilled.size(); i++) {
            prefilled.get(i).prefilled += prefillTokens.get(i);
        }
        for (int i = 0; i < sampled.size(); i++) {
            afterSample(sampled.get(i), result.token(i), result.logprobs(i));
        }
        steps++;
        return forwardNanos;
    }

    /**
     * How a sequence's next token is picked: its parameters, random stream and penalties, with EOS and stop
     * tokens masked while it is under min_tokens; logprobs (of the raw logits) when it asked.
     */
    private SamplingRow samplingRow(Sequence s) {
        GenerationRequest r = s.request;
        Set<Integer> ends = s.generated < r.minTokens() ? endTokens(r) : Set.of();
        return new SamplingRow(r.sampling(), s.sampler, s.logits, ends, r.topLogprobs(), s.generated);
    }

    /** Takes a sequence's sampled token and streams or finishes it. */
    private void afterSample(Sequence s, int token, SampleResult.RowLogprobs logprobs) {
        GenerationRequest r = s.request;
        TokenLogprob logprob = logprobs == null ? null : Logprobs.of(tokenizer, logprobs, token);
        s.generated++;
        s.lastToken = token;
        s.logits.accept(token);
        long now = System.nanoTime();
        if (s.generated == 1) {
            metrics.timeToFirstToken(now - s.arrivalNanos);
        } else {
            metrics.interTokenLatency(now - s.lastTokenNanos);
        }
        s.lastTokenNanos = now;
        metrics.generated(1);

        boolean endToken = (!r.ignoreEos() && eosIds.contains(token)) || r.stopTokenIds().contains(token);
        if (endToken && s.generated > r.minTokens()) {
            finish(s, FinishReason.STOP, "", List.of(token), logprob);
            return;
        }
        String text = s.detokenizer.push(token);
        boolean stopped = false;
        if (s.generated > r.minTokens()) {
            StopStrings.Result res = s.stops.feed(text);
            text = res.emit();
            stopped = res.stopped();
        }
        if (stopped) {
            finish(s, FinishReason.STOP, text, List.of(token), logprob);
        } else if (s.generated >= r.maxTokens() || now - s.arrivalNanos > settings.maxRequestNanos()) {
            // max_tokens, or jemma.max-request-time (checked once per step, at each token) is spent.
            finish(s, FinishReason.LENGTH, text + s.stops.feed(s.detokenizer.flush()).emit() + s.stops.flush(),
                    List.of(token), logprob);
        } else {
            GenerationChunk chunk = new GenerationChunk(text, List.of(token),
                    logprob == null ? List.of() : List.of(logprob), null, s.prompt.length, s.generated);
            output.add(() -> s.emitter.emit(chunk));
        }
    }

    private Set<Integer> endTokens(GenerationRequest r) {
        Set<Integer> ends = new HashSet<>(r.stopTokenIds());
        if (!r.ignoreEos()) {
            ends.addAll(eosIds);
        }
        return ends;
    }

    private void finish(Sequence s, FinishReason reason, String text) {
        finish(s, reason, text, List.of(), null);
    }

    private void finish(Sequence s, FinishReason reason, String text, List<Integer> tokens, TokenLogprob logprob) {
        retire(s);
        if (reason == FinishReason.ABORT) {
            metrics.aborted();
            output.add(s.emitter::complete);
            return;
        }
        metrics.finished(reason, System.nanoTime() - s.arrivalNanos);
        GenerationChunk last = new GenerationChunk(text, tokens, logprob == null ? List.of() : List.of(logprob), reason,
                s.prompt.length, s.generated);
        output.add(() -> {
            s.emitter.emit(last);
            s.emitter.complete();
        });
    }

    private void fail(Sequence s, Throwable e) {
        retire(s);
        output.add(() -> s.emitter.fail(e));
    }

    private void retire(Sequence s) {
        running.remove(s);
        runningCount.set(running.size());
        model.release(s.id);
    }

    /** Tokens whose pages are in use (for the KV usage gauge). */
    double kvUsage() {
        return model.kvCache().usage();
    }
}
