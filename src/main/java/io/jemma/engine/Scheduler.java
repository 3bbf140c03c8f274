package io.jemma.engine;

import io.jemma.attention.ForwardBatch;
import io.jemma.attention.SequenceChunk;
import io.jemma.engine.sampling.Sampler;
import io.jemma.engine.sampling.SpeculativeSampling;
import io.jemma.engine.sampling.HostSampling;
import io.jemma.engine.sampling.SampleResult;
import io.jemma.engine.sampling.SamplingBatch;
import io.jemma.engine.sampling.SamplingRow;
import io.jemma.model.Gemma4Model;
import io.jemma.speculative.DraftTree;
import io.jemma.tokenizer.Tokenizer;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.subscription.BackPressureStrategy;
import org.jboss.logging.Logger;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
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
    private final SpeculativeDecoding speculative;
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
        this(model, tokenizer, settings, eosIds, metrics, null);
    }

    /** @param speculative speculative decoding's drafting and rollback, or null to decode one token per step */
    Scheduler(Gemma4Model model, Tokenizer tokenizer, Settings settings, Set<Integer> eosIds, EngineMetrics metrics,
              SpeculativeDecoding speculative) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.settings = settings;
        this.eosIds = Set.copyOf(eosIds);
        this.metrics = metrics;
        this.speculative = speculative;
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
            if (speculative != null) {
                chunk = Math.max(chunk, speculative.rowsPerRequest()); // a verify writes this many positions at once
            }
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
        Map<Sequence, DraftTree> drafts = speculative == null ? Map.of() : speculative.draft(running);
        List<Integer> sampledAt = new ArrayList<>();   // the logit row of each sampled sequence
        List<Sequence> verified = new ArrayList<>();   // sequences whose draft this forward verifies
        List<Integer> verifiedAt = new ArrayList<>();  // the logit row of each one's root
        int row = 0;
        for (Sequence s : running) {            // every decode first: one token each, or a draft to verify
            DraftTree draft = drafts.get(s);
            if (draft != null) {
                chunks.add(speculative.chunk(s, draft, row));
                verified.add(s);
                verifiedAt.add(logitRows.size());
                for (int i = 0; i < draft.size(); i++) {
                    ids.add(draft.token(i));
                    logitRows.add(row++);
                }
            } else if (!s.prefilling()) {
                chunks.add(new SequenceChunk(s.id, s.cachedLength(), 1, row));
                ids.add(s.lastToken);
                sampled.add(s);
                sampledAt.add(logitRows.size());
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
                    sampledAt.add(logitRows.size());
                    logitRows.add(row - 1);
                }
                prefilled.add(s);
                prefillTokens.add(n);
            }
        }
        int[] idArray = ids.stream().mapToInt(Integer::intValue).toArray();
        int[] rows = logitRows.stream().mapToInt(Integer::intValue).toArray();
        ForwardBatch batch = new ForwardBatch(chunks, row);
        long start = System.nanoTime();
        SampleResult result = null;
        VerifyLogits logits = null;
        if (verified.isEmpty()) {
            // Sampling runs on the backend: on the GPU only the tokens (and asked-for logprobs) come back.
            result = model.forwardAndSample(batch, idArray, rows,
                    new SamplingBatch(sampled.stream().map(this::samplingRow).toList()));
        } else {
            logits = verifyLogits(batch, idArray, rows, sampled, sampledAt, verified, verifiedAt, drafts);
        }
        long forwardNanos = System.nanoTime() - start;
        int vocab = model.config().vocabSize();
        for (int i = 0; i < prefilled.size(); i++) {
            prefilled.get(i).prefilled += prefillTokens.get(i);
        }
        // What the next drafts start from: the hidden state of each sequence's last kept row.
        List<Sequence> drafting = new ArrayList<>();
        List<Integer> hiddenAt = new ArrayList<>();
        for (int i = 0; i < sampled.size(); i++) {
            int at = sampledAt.get(i);
            if (speculative != null) {
                drafting.add(sampled.get(i));
                hiddenAt.add(at);
            }
            if (result != null) {
                afterSample(sampled.get(i), result.token(i), result.logprobs(i));
            } else {
                afterLogits(sampled.get(i), logits.host(), logits.offset(at), vocab);
            }
        }
        for (int i = 0; i < verified.size(); i++) {
            int at = verified(verified.get(i), drafts.get(verified.get(i)), logits, verifiedAt.get(i), vocab);
            if (at >= 0) {
                drafting.add(verified.get(i));
                hiddenAt.add(at);
            }
        }
        if (!drafting.isEmpty()) {
            float[] hidden = model.hiddenRows(hiddenAt.stream().mapToInt(Integer::intValue).toArray());
            for (int i = 0; i < drafting.size(); i++) {
                drafting.get(i).draftHidden = hiddenRow(hidden, i);
            }
        }
        if (!verified.isEmpty()) {
            speculative.verified(forwardNanos);
        }
        steps++;
        return forwardNanos;
    }

    /**
     * A verify step's logits as the walks read them: on the host the rows of sequences that need their whole
     * distribution (sampling, logprobs, penalties, end tokens masked under min_tokens, and the step's plain
     * decodes); for the greedy rest only the target's argmax per row comes back (picked on the backend).
     *
     * @param host    the host rows, {@code [vocab]} each
     * @param offsets per logit row, its offset in {@code host}, -1 when it stayed on the backend
     * @param argmax  per logit row, the target's most likely token (null when every row came to the host)
     */
    private record VerifyLogits(float[] host, int[] offsets, int[] argmax) {
        int offset(int row) {
            int o = offsets[row];
            if (o < 0) {
                throw new IllegalStateException("logit row " + row + " stayed on the backend");
            }
            return o;
        }
    }

    private VerifyLogits verifyLogits(ForwardBatch batch, int[] ids, int[] rows, List<Sequence> sampled,
                                      List<Integer> sampledAt, List<Sequence> verified, List<Integer> verifiedAt,
                                      Map<Sequence, DraftTree> drafts) {
        var logits = model.logits(batch, ids, rows);      // [>= rows, vocab] on the backend (a graph may pad)
        int vocab = model.config().vocabSize();
        int[] offsets = new int[rows.length];
        java.util.Arrays.fill(offsets, -1);
        List<Integer> host = new ArrayList<>(sampledAt);
        boolean onDevice = false;
        for (int i = 0; i < verified.size(); i++) {
            Sequence s = verified.get(i);
            if (hostWalk(s)) {
                for (int j = 0; j < drafts.get(s).size(); j++) {
                    host.add(verifiedAt.get(i) + j);
                }
            } else {
                onDevice = true;
            }
        }
        float[] values = new float[0];
        if (!host.isEmpty()) {
            int[] wanted = host.stream().mapToInt(Integer::intValue).toArray();
            var gathered = model.backend().allocateScratch(wanted.length, vocab);   // [wanted, vocab]
            model.backend().gatherRows(logits, wanted, gathered);
            values = model.backend().toHost(gathered);
            for (int i = 0; i < wanted.length; i++) {
                offsets[wanted[i]] = i * vocab;
            }
        }
        // Greedy rows, ties to the lowest id on the backend as on the host. (Host rows were read first.)
        int[] argmax = onDevice ? model.backend().sample(logits, SamplingBatch.greedy(rows.length)).tokens() : null;
        return new VerifyLogits(values, offsets, argmax);
    }

    /** Whether a verified sequence's walk needs its rows' whole distributions on the host. */
    private static boolean hostWalk(Sequence s) {
        GenerationRequest r = s.request;
        return !s.sampler.params().greedy() || r.topLogprobs() >= 0 || !r.penalties().none()
                || s.generated < r.minTokens();
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

    /** Takes a sequence's token sampled on the backend and streams or finishes it. */
    private void afterSample(Sequence s, int token, SampleResult.RowLogprobs logprobs) {
        commit(s, token, logprobs == null ? null : Logprobs.of(tokenizer, logprobs, token));
    }

    /**
     * Samples a sequence's next token on the host from its logits row (steps that verify drafts bring every
     * logit row to the host) and streams or finishes it.
     */
    private void afterLogits(Sequence s, float[] logits, int offset, int vocab) {
        GenerationRequest r = s.request;
        // Logprobs describe the model's own distribution: taken before penalties and temperature.
        float[] logSoftmax = r.topLogprobs() >= 0 ? HostSampling.logSoftmax(logits, offset, vocab) : null;
        Set<Integer> ends = s.generated < r.minTokens() ? endTokens(r) : Set.of();
        s.logits.apply(logits, offset, vocab, ends);
        int token = s.sampler.sample(logits, offset, vocab);
        commit(s, token, hostLogprob(logSoftmax, token, r.topLogprobs()));
    }

    private TokenLogprob hostLogprob(float[] logSoftmax, int token, int top) {
        return logSoftmax == null ? null : Logprobs.of(tokenizer, HostSampling.top(logSoftmax, token, top), token);
    }

    /**
     * Walks a verified draft with the target's logits of its rows: at each node the target's choice (greedy) or
     * speculative sampling decides the token, which is streamed like any decoded token (stop strings, EOS and
     * max_tokens end the sequence there, dropping the rest); while it is the draft's, the walk goes on to that
     * child. Then the KV of the rejected nodes is rolled back; returns the logit row whose hidden state the next
     * draft starts from (the last accepted node's), or -1 when the sequence finished.
     */
    private int verified(Sequence s, DraftTree draft, VerifyLogits rowsOf, int rootAt, int vocab) {
        GenerationRequest r = s.request;
        int start = s.cachedLength();
        List<Integer> accepted = new ArrayList<>();
        int node = 0;
        float[] logits = rowsOf.host();
        boolean host = hostWalk(s);
        while (true) {
            int offset = host ? rowsOf.offset(rootAt + node) : -1;
            float[] logSoftmax = host && r.topLogprobs() >= 0 ? HostSampling.logSoftmax(logits, offset, vocab) : null;
            if (host) {
                Set<Integer> ends = s.generated < r.minTokens() ? endTokens(r) : Set.of();
                s.logits.apply(logits, offset, vocab, ends);
            }
            int[] children = draft.children(node);
            int token;
            int next = -1;
            if (s.sampler.params().greedy()) {
                token = host ? Sampler.argmax(logits, offset, vocab) : rowsOf.argmax()[rootAt + node];
                for (int c : children) {
                    if (draft.token(c) == token) {
                        next = c;
                    }
                }
            } else if (children.length == 0) {
                token = s.sampler.sample(logits, offset, vocab);
            } else {
                float[] p = s.sampler.distribution(logits, offset, vocab);
                SpeculativeSampling.Result result;
                if (children.length == 1 && draft.distribution(children[0]) != null) {
                    result = SpeculativeSampling.sampled(p, draft.distribution(children[0]), draft.token(children[0]),
                            s.sampler);
                } else {
                    int[] candidates = new int[children.length];
                    for (int c = 0; c < children.length; c++) {
                        candidates[c] = draft.token(children[c]);
                    }
                    result = SpeculativeSampling.candidates(p, candidates, s.sampler);
                }
                token = result.token();
                next = result.accepted() ? children[result.candidate()] : -1;
            }
            TokenLogprob logprob = hostLogprob(logSoftmax, token, r.topLogprobs());
            if (!commit(s, token, logprob)) {
                metrics.speculativeRound(accepted.size(), draft.maxDepth());
                return -1; // finished: its pages are already free
            }
            if (next < 0) {
                break;
            }
            accepted.add(next);
            node = next;
        }
        speculative.rollBack(s, draft, start, accepted.stream().mapToInt(Integer::intValue).toArray());
        return rootAt + node;    // the next draft starts from this row's hidden state
    }

    private float[] hiddenRow(float[] hidden, int row) {
        int width = model.config().hiddenSize();
        return java.util.Arrays.copyOfRange(hidden, row * width, (row + 1) * width);
    }

    /** Streams or finishes a sequence's new token; false when the sequence finished with it. */
    private boolean commit(Sequence s, int token, TokenLogprob logprob) {
        GenerationRequest r = s.request;
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
            return false;
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
            return false;
        } else if (s.generated >= r.maxTokens() || now - s.arrivalNanos > settings.maxRequestNanos()) {
            // max_tokens, or jemma.max-request-time (checked once per step, at each token) is spent.
            finish(s, FinishReason.LENGTH, text + s.stops.feed(s.detokenizer.flush()).emit() + s.stops.flush(),
                    List.of(token), logprob);
            return false;
        } else {
            GenerationChunk chunk = new GenerationChunk(text, List.of(token),
                    logprob == null ? List.of() : List.of(logprob), null, s.prompt.length, s.generated);
            output.add(() -> s.emitter.emit(chunk));
            return true;
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
