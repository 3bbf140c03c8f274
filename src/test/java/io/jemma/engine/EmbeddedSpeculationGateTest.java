package io.jemma.engine;

import io.jemma.attention.KvGeometry;
import io.jemma.backend.cpu.CpuBackend;
import io.jemma.bench.EvalItem;
import io.jemma.bench.PrometheusText;
import io.jemma.model.Gemma4Model;
import io.jemma.model.KvBudget;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import io.jemma.speculative.SpeculativeLimits;
import io.jemma.speculative.SpeculativeSettings;
import io.jemma.tokenizer.ChatTemplate;
import io.jemma.tokenizer.Tokenizer;
import io.micrometer.core.instrument.Tags;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 9's speculation gate on the CPU: a slice of the embedded model's held-out test set (every task kind), greedy,
 * through the continuous-batching scheduler with several requests at once, once without speculation and once with
 * the embedded assistant at 3-1-4 ({@code jemma.speculative-draft-model-path=embedded}). The outputs must be
 * identical item by item, and the mean accept length that the engine exports (its histogram, read from the
 * Prometheus text the way the eval client reads {@code /q/metrics}) must be at least 2.5; the training script
 * measured 2.98 with transformers on the whole test set.
 */
class EmbeddedSpeculationGateTest {
    /** Every 3rd item (an odd stride keeps the 8 interleaved tasks): 160 items, 20 of each task. */
    static final int STRIDE = 3;
    static final int MAX_RUNNING = 8;
    static final int MAX_TOKENS = 64;
    static final double MIN_ACCEPT_LENGTH = 2.5;
    private static final Duration WAIT = Duration.ofMinutes(2);
    private static final AtomicInteger IDS = new AtomicInteger();

    /** One item's greedy output. */
    record Output(List<Integer> tokens, String text, FinishReason finish) {
    }

    /** A scheduler thread over its own copy of the embedded model, as the engine runs it. */
    record Engine(Gemma4Model model, Scheduler scheduler, EngineMetrics metrics, PrometheusMeterRegistry registry,
                  SpeculativeDecoding speculative) implements AutoCloseable {
        @Override
        public void close() {
            scheduler.stop();
            if (speculative != null) {
                speculative.assistant().close();
            }
            model.close();
        }
    }

    @Test
    void greedyOutputsWithTheEmbeddedAssistantEqualPlainDecodingAndItAcceptsAtLeast2Point5() {
        Path dir = EmbeddedModel.extract();
        Tokenizer tokenizer = Tokenizer.load(dir);
        ChatTemplate template = ChatTemplate.requireForModel(dir);
        List<EvalItem> items = EvalItem.slice(EvalItem.load(EvalItem.TEST_SET), STRIDE, 0);
        assertEquals(8, items.stream().map(EvalItem::task).distinct().count(), "every task kind is in the slice");
        List<GenerationRequest> requests = items.stream()
                .map(item -> GenerationRequest.greedy(tokenizer.encode(template.render(messages(item), true)),
                        MAX_TOKENS)).toList();

        List<Output> plain;
        try (Engine engine = start(dir, tokenizer, Optional.empty())) {
            plain = runTogether(engine, requests);
        }
        var settings = SpeculativeSettings.resolve(Optional.empty(), Optional.of(SpeculativeSettings.EMBEDDED_DRAFT),
                OptionalInt.empty(), OptionalInt.empty(), OptionalInt.empty()).orElseThrow();
        assertEquals(new SpeculativeLimits(3, 1, 4), settings.limits());
        List<Output> speculated;
        String before;
        String after;
        long[] totals;
        try (Engine engine = start(dir, tokenizer, Optional.of(settings))) {
            before = engine.registry().scrape();
            speculated = runTogether(engine, requests);
            after = engine.registry().scrape();
            totals = engine.metrics().speculativeTotals();
        }

        int correct = 0;
        for (int i = 0; i < items.size(); i++) {
            String where = items.get(i).id() + " [" + items.get(i).task() + "]";
            assertEquals(plain.get(i).tokens(), speculated.get(i).tokens(), where);
            assertEquals(plain.get(i).text(), speculated.get(i).text(), where);
            assertEquals(plain.get(i).finish(), speculated.get(i).finish(), where);
            correct += items.get(i).isAnsweredBy(speculated.get(i).text()) ? 1 : 0;
        }
        double accept = PrometheusText.acceptLength(before, after).orElseThrow(
                () -> new AssertionError("no accept length in the engine's metrics:\n" + after));
        double rounds = totals[0];
        System.out.printf("speculation gate: %d items, %d correct, identical with and without speculation; %d rounds, "
                + "mean accept length %.3f%n", items.size(), correct, totals[0], accept);
        assertTrue(rounds > items.size(), "rounds were verified: " + totals[0]);
        assertEquals((totals[1] + rounds) / rounds, accept, 1e-9,
                "the exported histogram's mean is the engine's own count");
        assertTrue(accept >= MIN_ACCEPT_LENGTH, String.format("mean accept length %.3f < %.1f over %d rounds",
                accept, MIN_ACCEPT_LENGTH, totals[0]));
    }

    private static List<Map<String, Object>> messages(EvalItem item) {
        List<Map<String, Object>> out = new ArrayList<>();
        item.messages().forEach(m -> {
            Map<String, Object> message = new LinkedHashMap<>();
            message.put("role", m.get("role").asText());
            message.put("content", m.get("content").asText());
            out.add(message);
        });
        return out;
    }

    /** The engine's pieces as InferenceEngine puts them together, on the CPU. */
    private static Engine start(Path dir, Tokenizer tokenizer, Optional<SpeculativeSettings> settings) {
        TextConfig config = TextConfig.load(dir);
        int rows = settings.map(s -> s.limits().numDraftTokens()).orElse(1);
        int extra = settings.map(s -> SpeculativeDecoding.retainedBehindWindow(s.limits())).orElse(0);
        int chunk = 256;
        CpuBackend backend = new CpuBackend();
        KvGeometry kv = new KvBudget(config, backend.kvBytesPerElement()).forSequences(MAX_RUNNING, 160, 16,
                Math.max(chunk, rows) + extra);
        Gemma4Model model = new Gemma4Model(config, Checkpoint.open(dir), backend, kv);
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        EngineMetrics metrics = new EngineMetrics(registry, Tags.empty());
        SpeculativeDecoding spec = null;
        if (settings.isPresent()) {
            spec = SpeculativeDecoding.load(settings.get(), model, metrics);
            metrics.speculative(registry, Tags.empty(), settings.get().limits().numDraftTokens());
        }
        Set<Integer> eos = new HashSet<>(config.stopTokenIds());
        tokenizer.eosId().ifPresent(eos::add);
        tokenizer.tokenId("<turn|>").ifPresent(eos::add);
        Scheduler scheduler = new Scheduler(model, tokenizer, new Scheduler.Settings(MAX_RUNNING, 1024, chunk), eos,
                metrics, spec);
        Thread t = new Thread(scheduler, "gate-scheduler");
        t.setDaemon(true);
        t.start();
        return new Engine(model, scheduler, metrics, registry, spec);
    }

    /** Every request at once: MAX_RUNNING decode together, the rest wait in the queue. */
    private static List<Output> runTogether(Engine engine, List<GenerationRequest> requests) {
        List<CompletableFuture<List<GenerationChunk>>> futures = new ArrayList<>();
        for (GenerationRequest r : requests) {
            futures.add(engine.scheduler().generate(IDS.incrementAndGet(), r).collect().asList()
                    .subscribeAsCompletionStage().toCompletableFuture());
        }
        List<Output> out = new ArrayList<>();
        for (var f : futures) {
            List<GenerationChunk> chunks = f.orTimeout(WAIT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS).join();
            List<Integer> tokens = chunks.stream().flatMap(c -> c.tokenIds().stream()).toList();
            String text = String.join("", chunks.stream().map(GenerationChunk::text).toList());
            out.add(new Output(tokens, text, chunks.getLast().finishReason()));
        }
        return out;
    }
}
