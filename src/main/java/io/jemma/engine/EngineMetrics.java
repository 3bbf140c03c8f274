package io.jemma.engine;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;

import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The engine's Prometheus metrics (prefix {@code jemma_}), modelled on sglang's: latency histograms with
 * its buckets, request and token counters, and gauges read from the scheduler.
 */
final class EngineMetrics {
    private static final double[] TTFT_BUCKETS = {0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80,
            100, 200, 400};
    private static final double[] ITL_BUCKETS = {0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035,
            0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2, 4, 6, 8};
    private static final double[] E2E_BUCKETS = {0.1, 0.2, 0.4, 0.8, 1, 2, 5, 10, 20, 40, 60, 80, 100, 150, 200,
            250, 300, 350, 500, 1000};

    private final DistributionSummary ttft;
    private final DistributionSummary itl;
    private final DistributionSummary e2e;
    private final DistributionSummary queueTime;
    private final Counter promptTokens;
    private final Counter generationTokens;
    private final Counter aborted;
    private final Map<FinishReason, Counter> finished = new EnumMap<>(FinishReason.class);
    private final Counter forwardSeconds;
    private final Counter stepSeconds;
    private final AtomicLong generatedTotal = new AtomicLong();
    private volatile double throughput;
    private long windowStartNanos = System.nanoTime();
    private long windowStartTokens;

    EngineMetrics(MeterRegistry registry, Tags tags) {
        ttft = histogram(registry, "jemma_time_to_first_token_seconds", "Time to first token", TTFT_BUCKETS, tags);
        itl = histogram(registry, "jemma_inter_token_latency_seconds", "Time between two tokens", ITL_BUCKETS, tags);
        e2e = histogram(registry, "jemma_e2e_request_latency_seconds", "End-to-end request latency", E2E_BUCKETS, tags);
        queueTime = histogram(registry, "jemma_queue_time_seconds", "Time waiting for admission", E2E_BUCKETS, tags);
        promptTokens = Counter.builder("jemma_prompt_tokens").description("Prompt tokens processed").tags(tags)
                .register(registry);
        generationTokens = Counter.builder("jemma_generation_tokens").description("Tokens generated").tags(tags)
                .register(registry);
        aborted = Counter.builder("jemma_aborted_requests").description("Requests cancelled by their client")
                .tags(tags).register(registry);
        for (FinishReason r : FinishReason.values()) {
            if (r != FinishReason.ABORT) {
                finished.put(r, Counter.builder("jemma_requests").description("Finished requests by finish reason")
                        .tags(tags).tag("finish_reason", r.openAiName()).register(registry));
            }
        }
        forwardSeconds = Counter.builder("jemma_engine_forward_seconds")
                .description("Time the scheduler spent in forward passes").tags(tags).register(registry);
        stepSeconds = Counter.builder("jemma_engine_step_seconds")
                .description("Time the scheduler spent in steps (forward, sampling, detokenizing, streaming)")
                .tags(tags).register(registry);
        Gauge.builder("jemma_gen_throughput", this, m -> m.throughput)
                .description("Generation throughput (tokens/s) over the last few seconds").tags(tags).register(registry);
    }

    /** Gauges read from the engine's live state. */
    void gauges(MeterRegistry registry, Tags tags, Supplier<Number> running, Supplier<Number> queued,
                Supplier<Number> kvUsage) {
        Gauge.builder("jemma_num_running_reqs", running).description("Requests being decoded").tags(tags)
                .register(registry);
        Gauge.builder("jemma_num_queue_reqs", queued).description("Requests waiting for admission").tags(tags)
                .register(registry);
        Gauge.builder("jemma_kv_cache_usage", kvUsage).description("Fraction of KV pages in use").tags(tags)
                .register(registry);
    }

    private static DistributionSummary histogram(MeterRegistry registry, String name, String help, double[] buckets,
                                                 Tags tags) {
        return DistributionSummary.builder(name).description(help).baseUnit("seconds").serviceLevelObjectives(buckets)
                .tags(tags).register(registry);
    }

    void timeToFirstToken(long nanos) {
        ttft.record(nanos / 1e9);
    }

    void interTokenLatency(long nanos) {
        itl.record(nanos / 1e9);
    }

    void queueTime(long nanos) {
        queueTime.record(nanos / 1e9);
    }

    void generated(int tokens) {
        generationTokens.increment(tokens);
        generatedTotal.addAndGet(tokens);
    }

    void prompt(int tokens) {
        promptTokens.increment(tokens);
    }

    void finished(FinishReason reason, long e2eNanos) {
        e2e.record(e2eNanos / 1e9);
        finished.get(reason).increment();
    }

    void aborted() {
        aborted.increment();
    }

    /** One scheduler step: its forward time and its whole time. */
    void step(long forwardNanos, long stepNanos) {
        forwardSeconds.increment(forwardNanos / 1e9);
        stepSeconds.increment(stepNanos / 1e9);
        long now = System.nanoTime();
        if (now - windowStartNanos > 2_000_000_000L) {
            long total = generatedTotal.get();
            throughput = (total - windowStartTokens) / ((now - windowStartNanos) / 1e9);
            windowStartNanos = now;
            windowStartTokens = total;
        }
    }

    // ---- speculative decoding (sglang: spec_accept_length, spec_accept_rate)

    private static final double[] SPEC_SECONDS_BUCKETS = {0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02,
            0.03, 0.04, 0.06, 0.08, 0.1, 0.2, 0.4, 1, 2, 4};
    private DistributionSummary specAcceptLength;
    private DistributionSummary specDraftSeconds;
    private DistributionSummary specVerifySeconds;
    private long specWindowStartNanos = System.nanoTime();
    private long specWindowRounds;
    private long specWindowAccepted;
    private long specWindowProposed;
    private volatile double specAcceptLengthMean;
    private volatile double specAcceptRate;
    private long specTotalRounds;
    private long specTotalAccepted;
    private long specTotalProposed;

    /**
     * The speculative-decoding meters: accept length (tokens a request gains per verify, the target's own one
     * included) as a gauge over the last few seconds and as a histogram per round and request, the accept rate
     * (accepted draft tokens / drafted tokens along the deepest path), and the draft and verify time per round.
     *
     * @param maxDraftTokens the most tokens one verify can give (histogram buckets 1..this)
     */
    void speculative(MeterRegistry registry, Tags tags, int maxDraftTokens) {
        double[] lengths = new double[maxDraftTokens];
        for (int i = 0; i < lengths.length; i++) {
            lengths[i] = i + 1;
        }
        specAcceptLength = DistributionSummary.builder("jemma_spec_accept_length_per_round")
                .description("Tokens one request gained from one verify (accepted drafts + the target's token)")
                .serviceLevelObjectives(lengths).tags(tags).register(registry);
        specDraftSeconds = histogram(registry, "jemma_spec_draft_seconds", "Time drafting one round with the assistant",
                SPEC_SECONDS_BUCKETS, tags);
        specVerifySeconds = histogram(registry, "jemma_spec_verify_seconds",
                "Time of one round's verify forward (the target over all drafts, with any prefill chunks)",
                SPEC_SECONDS_BUCKETS, tags);
        Gauge.builder("jemma_spec_accept_length", this, m -> m.specAcceptLengthMean)
                .description("Mean tokens per request per verify over the last few seconds").tags(tags).register(registry);
        Gauge.builder("jemma_spec_accept_rate", this, m -> m.specAcceptRate)
                .description("Accepted draft tokens / drafted tokens over the last few seconds").tags(tags)
                .register(registry);
    }

    void speculativeDraft(long nanos) {
        if (specDraftSeconds != null) {
            specDraftSeconds.record(nanos / 1e9);
        }
    }

    void speculativeVerify(long nanos) {
        if (specVerifySeconds != null) {
            specVerifySeconds.record(nanos / 1e9);
        }
    }

    /** One request's round: {@code accepted} drafted tokens kept out of a draft {@code depth} deep. */
    synchronized void speculativeRound(int accepted, int depth) {
        if (specAcceptLength != null) {
            specAcceptLength.record(accepted + 1);
        }
        specWindowRounds++;
        specTotalRounds++;
        specTotalAccepted += accepted;
        specTotalProposed += depth;
        specWindowAccepted += accepted;
        specWindowProposed += depth;
        specAcceptLengthMean = (double) (specWindowAccepted + specWindowRounds) / specWindowRounds;
        specAcceptRate = specWindowProposed == 0 ? 0 : (double) specWindowAccepted / specWindowProposed;
        long now = System.nanoTime();
        if (now - specWindowStartNanos > 2_000_000_000L) { // the gauges then start a new window
            specWindowStartNanos = now;
            specWindowRounds = 0;
            specWindowAccepted = 0;
            specWindowProposed = 0;
        }
    }

    /** Accepted drafts + rounds + proposed since the engine started, for tests: [rounds, accepted, proposed]. */
    synchronized long[] speculativeTotals() {
        return new long[] {specTotalRounds, specTotalAccepted, specTotalProposed};
    }

    double forwardSeconds() {
        return forwardSeconds.count();
    }

    double stepSeconds() {
        return stepSeconds.count();
    }
}
