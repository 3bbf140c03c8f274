package io.jemma.engine;

import io.jemma.attention.AttentionDispatch;
import io.jemma.attention.KvGeometry;
import io.jemma.backend.Backend;
import io.jemma.bench.EvalItem;
import io.jemma.bench.PrometheusText;
import io.jemma.model.Gemma4Model;
import io.jemma.model.KvBudget;
import io.jemma.model.config.AttentionType;
import io.jemma.model.config.LayerSpec;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import io.jemma.speculative.SpeculativeSettings;
import io.jemma.tokenizer.ChatTemplate;
import io.jemma.tokenizer.Tokenizer;
import io.micrometer.core.instrument.Tags;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;

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
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * What issue 9's engine-level gates share (the CPU speculation gate, EmbeddedSpeculationGateTest, and the H200
 * gate, EmbeddedEvalGpuTest): the embedded model's test items as greedy requests through its chat template, the
 * engine's parts put together as InferenceEngine does on a given backend, every request run at once through the
 * continuous-batching scheduler, and the accept length the engine exports.
 */
final class EmbeddedGate {
    static final int MAX_RUNNING = 8;
    static final int MAX_TOKENS = 64;
    static final int PAGE_SIZE = 16;
    static final int CHUNK = 256;
    private static final Duration WAIT = Duration.ofMinutes(2);
    private static final AtomicInteger IDS = new AtomicInteger();

    private EmbeddedGate() {
    }

    /** One item's greedy output. */
    record Output(List<Integer> tokens, String text, FinishReason finish) {
    }

    /** A scheduler thread over its own copy of the embedded model, as the engine runs it. */
    record Engine(Gemma4Model model, Scheduler scheduler, Thread thread, EngineMetrics metrics,
                  PrometheusMeterRegistry registry, SpeculativeDecoding speculative) implements AutoCloseable {
        @Override
        public void close() {
            scheduler.stop();
            try {
                thread.join(10_000);       // its last step done before the backend under it closes
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (speculative != null) {
                speculative.assistant().close();
            }
            model.close();
        }
    }

    /** A speculative run: its outputs, the mean accept length exported as a histogram, and the engine's counts. */
    record Speculated(List<Output> outputs, double acceptLength, long rounds, long accepted) {
    }

    /** The embedded model, its tokenizer and chat template. */
    record Model(Path dir, Tokenizer tokenizer, ChatTemplate template) {
        static Model extract() {
            Path dir = EmbeddedModel.extract();
            return new Model(dir, Tokenizer.load(dir), ChatTemplate.requireForModel(dir));
        }

        /** Each item's chat, rendered with the generation prompt and encoded, as a greedy request. */
        List<GenerationRequest> requests(List<EvalItem> items) {
            return items.stream().map(item -> GenerationRequest.greedy(tokenizer.encode(template.render(messages(item),
                    true)), MAX_TOKENS)).toList();
        }
    }

    /** jemma.speculative-draft-model-path=embedded with sglang's defaults for the rest: 3-1-4. */
    static SpeculativeSettings embeddedAssistant() {
        return SpeculativeSettings.resolve(Optional.empty(), Optional.of(SpeculativeSettings.EMBEDDED_DRAFT),
                OptionalInt.empty(), OptionalInt.empty(), OptionalInt.empty()).orElseThrow();
    }

    static List<Map<String, Object>> messages(EvalItem item) {
        List<Map<String, Object>> out = new ArrayList<>();
        item.messages().forEach(m -> {
            Map<String, Object> message = new LinkedHashMap<>();
            message.put("role", m.get("role").asText());
            message.put("content", m.get("content").asText());
            out.add(message);
        });
        return out;
    }

    /** Tokens a sequence may reach: the longest prompt and MAX_TOKENS. */
    static int maxLength(List<GenerationRequest> requests) {
        return requests.stream().mapToInt(GenerationRequest::promptLength).max().orElse(0) + MAX_TOKENS;
    }

    /** Every decoder layer's attention shape, as InferenceEngine hands them to the dispatch. */
    static List<AttentionDispatch.LayerShape> layerShapes(TextConfig config) {
        List<AttentionDispatch.LayerShape> shapes = new ArrayList<>();
        for (LayerSpec s : config.layers()) {
            shapes.add(new AttentionDispatch.LayerShape(s.index(), s.headDim(), s.numHeads() / s.numKvHeads(),
                    s.attentionType() == AttentionType.SLIDING ? s.slidingWindow() : 0));
        }
        return shapes;
    }

    /**
     * The engine's pieces as InferenceEngine puts them together, on {@code backend} (its attention backend already
     * chosen): KV for MAX_RUNNING sequences of {@code maxLength} tokens, the assistant when {@code settings} name
     * one, and decode steps replayed from CUDA graphs when there is no speculation and the backend has graphs.
     */
    static Engine start(Model m, Backend backend, int maxLength, Optional<SpeculativeSettings> settings) {
        TextConfig config = TextConfig.load(m.dir());
        int rows = settings.map(s -> s.limits().numDraftTokens()).orElse(1);
        int extra = settings.map(s -> SpeculativeDecoding.retainedBehindWindow(s.limits())).orElse(0);
        KvGeometry kv = new KvBudget(config, backend.kvBytesPerElement()).forSequences(MAX_RUNNING, maxLength,
                PAGE_SIZE, Math.max(CHUNK, rows) + extra);
        Gemma4Model model = new Gemma4Model(config, Checkpoint.open(m.dir()), backend, kv);
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        EngineMetrics metrics = new EngineMetrics(registry, Tags.empty());
        SpeculativeDecoding spec = null;
        if (settings.isPresent()) {
            spec = SpeculativeDecoding.load(settings.get(), model, metrics);
            metrics.speculative(registry, Tags.empty(), settings.get().limits().numDraftTokens());
        } else {
            model.useGraphs(MAX_RUNNING);    // a no-op on the CPU
            model.captureGraphs();
        }
        Set<Integer> eos = new HashSet<>(config.stopTokenIds());
        m.tokenizer().eosId().ifPresent(eos::add);
        m.tokenizer().tokenId("<turn|>").ifPresent(eos::add);
        Scheduler scheduler = new Scheduler(model, m.tokenizer(), new Scheduler.Settings(MAX_RUNNING, 1024, CHUNK),
                eos, metrics, spec);
        Thread t = new Thread(scheduler, "gate-scheduler");
        t.setDaemon(true);
        t.start();
        return new Engine(model, scheduler, t, metrics, registry, spec);
    }

    /** Every request at once: MAX_RUNNING decode together, the rest wait in the queue. */
    static List<Output> runTogether(Engine engine, List<GenerationRequest> requests) {
        List<CompletableFuture<List<GenerationChunk>>> futures = new ArrayList<>();
        for (GenerationRequest r : requests) {
            futures.add(engine.scheduler().generate(IDS.incrementAndGet(), r).collect().asList()
                    .subscribeAsCompletionStage().toCompletableFuture());
        }
        List<Output> out = new ArrayList<>();
        for (var f : futures) {
            List<GenerationChunk> chunks = f.orTimeout(WAIT.toSeconds(), TimeUnit.SECONDS).join();
            List<Integer> tokens = chunks.stream().flatMap(c -> c.tokenIds().stream()).toList();
            String text = String.join("", chunks.stream().map(GenerationChunk::text).toList());
            out.add(new Output(tokens, text, chunks.getLast().finishReason()));
        }
        return out;
    }

    /**
     * {@link #runTogether} on a speculating engine, with the mean accept length read from the Prometheus text
     * before and after (as the eval client reads /q/metrics), which must be the engine's own count.
     */
    static Speculated runSpeculated(Engine engine, List<GenerationRequest> requests) {
        String before = engine.registry().scrape();
        List<Output> outputs = runTogether(engine, requests);
        String after = engine.registry().scrape();
        long[] totals = engine.metrics().speculativeTotals();
        double accept = PrometheusText.acceptLength(before, after).orElseThrow(
                () -> new AssertionError("no accept length in the engine's metrics:\n" + after));
        double rounds = totals[0];
        assertEquals((totals[1] + rounds) / rounds, accept, 1e-9, "the exported histogram's mean is the engine's own count");
        return new Speculated(outputs, accept, totals[0], totals[1]);
    }

    /** Items whose output is the exact answer. */
    static int correct(List<EvalItem> items, List<Output> outputs) {
        int correct = 0;
        for (int i = 0; i < items.size(); i++) {
            correct += items.get(i).isAnsweredBy(outputs.get(i).text()) ? 1 : 0;
        }
        return correct;
    }

    /** Items whose tokens, text or finish reason differ between two runs, with where the first one is. */
    static List<String> differences(List<EvalItem> items, List<Output> a, List<Output> b) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            if (!a.get(i).equals(b.get(i))) {
                out.add(items.get(i).id() + " [" + items.get(i).task() + "]: " + a.get(i) + " vs " + b.get(i));
            }
        }
        return out;
    }
}
