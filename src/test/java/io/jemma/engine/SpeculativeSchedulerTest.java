package io.jemma.engine;

import io.jemma.attention.KvGeometry;
import io.jemma.backend.cpu.CpuBackend;
import io.jemma.engine.sampling.Penalties;
import io.jemma.engine.sampling.SamplingParams;
import io.jemma.model.Gemma4Assistant;
import io.jemma.model.Gemma4Model;
import io.jemma.model.KvBudget;
import io.jemma.model.config.AssistantConfig;
import io.jemma.model.config.ConfigException;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import io.jemma.speculative.DraftSource;
import io.jemma.speculative.DraftTree;
import io.jemma.speculative.Drafter;
import io.jemma.speculative.SpeculativeLimits;
import io.jemma.speculative.SpeculativeSettings;
import io.jemma.tokenizer.Tokenizer;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.smallrye.mutiny.Multi;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative decoding inside the continuous-batching scheduler, on the golden tiny-31b and its assistant:
 * greedy output equals decoding without speculation (chains and trees, concurrent requests of different
 * lengths), with the real assistant and with drafts that are mostly right (so that runs of several tokens are
 * accepted, stop conditions land inside them and tree paths are moved into place); KV pages come back.
 */
class SpeculativeSchedulerTest {
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final AtomicInteger IDS = new AtomicInteger();
    private static final Set<Integer> EOS = Set.of(1, 6);

    static Path targetDir;
    static Path assistantDir;
    static Tokenizer tokenizer;
    static Running plain;

    /** A scheduler thread over its own model. */
    record Running(Gemma4Model model, Scheduler scheduler, EngineMetrics metrics, Gemma4Assistant assistant)
            implements AutoCloseable {
        @Override
        public void close() {
            scheduler.stop();
            if (assistant != null) {
                assistant.close();
            }
            model.close();
        }
    }

    @BeforeAll
    static void start() throws URISyntaxException {
        targetDir = Path.of(SpeculativeSchedulerTest.class.getResource("/golden/tiny-31b").toURI());
        assistantDir = Path.of(SpeculativeSchedulerTest.class.getResource("/golden/tiny-31b-assistant").toURI());
        tokenizer = Tokenizer.load(targetDir);
        plain = start(null, null);
    }

    @AfterAll
    static void stop() {
        plain.close();
    }

    /** A scheduler with speculation as given (limits null: none), drafts from the assistant unless a source is. */
    static Running start(SpeculativeLimits limits, Function<Gemma4Assistant, DraftSource> source) {
        TextConfig config = TextConfig.load(targetDir);
        int rows = limits == null ? 1 : limits.numDraftTokens();
        int extra = limits == null ? 0 : SpeculativeDecoding.retainedBehindWindow(limits);
        KvGeometry kv = new KvBudget(config, Float.BYTES).forSequences(32, 96, 4, Math.max(8, rows) + extra);
        Gemma4Model model = new Gemma4Model(config, Checkpoint.open(targetDir), new CpuBackend(), kv);
        EngineMetrics metrics = new EngineMetrics(new SimpleMeterRegistry(), Tags.empty());
        SpeculativeDecoding spec = null;
        Gemma4Assistant assistant = null;
        if (limits != null) {
            metrics.speculative(new SimpleMeterRegistry(), Tags.empty(), limits.numDraftTokens());
            assistant = new Gemma4Assistant(AssistantConfig.load(assistantDir), Checkpoint.open(assistantDir), model);
            spec = source == null ? new SpeculativeDecoding(model, assistant, limits, metrics)
                    : new SpeculativeDecoding(model, assistant, source.apply(assistant), limits, metrics);
        }
        Scheduler scheduler = new Scheduler(model, tokenizer, new Scheduler.Settings(32, 256, 8), EOS, metrics, spec);
        Thread t = new Thread(scheduler, "test-scheduler");
        t.setDaemon(true);
        t.start();
        return new Running(model, scheduler, metrics, assistant);
    }

    // ---- greedy equals plain decoding

    @Test
    void greedyChainWithTheAssistantEqualsPlainDecoding() {
        try (Running spec = start(SpeculativeLimits.chain(3), null)) {
            assertSameAsPlain(spec, requests(new Random(21), 12, SamplingParams.GREEDY));
            assertTrue(spec.metrics().speculativeTotals()[0] > 20, "rounds were verified");
        }
    }

    @Test
    void greedyTreeWithTheAssistantEqualsPlainDecoding() {
        try (Running spec = start(new SpeculativeLimits(3, 2, 6), null)) {
            assertSameAsPlain(spec, requests(new Random(22), 12, SamplingParams.GREEDY));
            assertTrue(spec.metrics().speculativeTotals()[0] > 20, "rounds were verified");
        }
    }

    @Test
    void mostlyRightChainsAreAcceptedInRunsAndChangeNothing() {
        Oracle oracle = new Oracle(SpeculativeLimits.chain(3), 0.8);
        try (Running spec = start(oracle.limits, a -> oracle)) {
            List<GenerationRequest> requests = requests(new Random(23), 12, SamplingParams.GREEDY);
            oracle.learn(requests);
            assertSameAsPlain(spec, requests);
            long[] totals = spec.metrics().speculativeTotals();
            assertTrue(totals[1] > totals[0], "more than one accepted draft token per round on average: "
                    + totals[1] + " accepted in " + totals[0] + " rounds");
        }
    }

    @Test
    void mostlyRightTreesAreAcceptedAlongPathsMovedIntoPlace() {
        Oracle oracle = new Oracle(new SpeculativeLimits(4, 2, 8), 0.85);
        try (Running spec = start(oracle.limits, a -> oracle)) {
            List<GenerationRequest> requests = requests(new Random(24), 12, SamplingParams.GREEDY);
            oracle.learn(requests);
            assertSameAsPlain(spec, requests);
            long[] totals = spec.metrics().speculativeTotals();
            assertTrue(totals[1] > totals[0], totals[1] + " accepted in " + totals[0] + " rounds");
            assertTrue(oracle.rightSecond.get() > 10, "accepted paths through second children (KV moved)");
        }
    }

    @Test
    void stopStringsAndLengthsEndInsideAcceptedRunsAsWithoutSpeculation() {
        Oracle oracle = new Oracle(SpeculativeLimits.chain(5), 0.9);
        try (Running spec = start(new SpeculativeLimits(5, 1, 6), a -> oracle)) {
            Random random = new Random(25);
            List<GenerationRequest> requests = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                int[] prompt = randomPrompt(random, 3 + random.nextInt(20));
                List<GenerationChunk> free = collect(plain, request(prompt, 30, SamplingParams.GREEDY, List.of()));
                String text = text(free);
                List<String> stop = text.length() > 12 ? List.of(text.substring(6 + i % 4, 10 + i % 4)) : List.of();
                requests.add(request(prompt, 30, SamplingParams.GREEDY, stop));
                requests.add(request(prompt, 1 + random.nextInt(13), SamplingParams.GREEDY, List.of()));
            }
            oracle.learn(requests);
            for (GenerationRequest r : requests) {
                List<GenerationChunk> expected = collect(plain, r);
                List<GenerationChunk> got = collect(spec, r);
                assertEquals(text(expected), text(got));
                assertEquals(tokens(expected), tokens(got));
                assertEquals(expected.getLast().finishReason(), got.getLast().finishReason());
                assertEquals(expected.getLast().completionTokens(), got.getLast().completionTokens());
            }
            awaitIdle(spec);
        }
    }

    /**
     * A verify step keeps on the backend the rows of plain greedy requests (only the target's argmax per row comes
     * back) and brings to the host the rows of requests whose walk needs the distribution: penalties, min_tokens
     * (end tokens masked), logprobs. Together in one batch, each must still give what it gives without speculation.
     */
    @Test
    void greedyRowsNeedingTheirDistributionBesidePlainOnesEqualPlainDecoding() {
        Oracle oracle = new Oracle(SpeculativeLimits.chain(3), 0.8);
        try (Running spec = start(oracle.limits, a -> oracle)) {
            Random random = new Random(28);
            List<GenerationRequest> requests = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                int[] prompt = randomPrompt(random, 3 + random.nextInt(30));
                int max = 8 + random.nextInt(20);
                requests.add(switch (i % 4) {
                    case 0 -> request(prompt, max, SamplingParams.GREEDY, List.of());
                    case 1 -> new GenerationRequest(prompt, SamplingParams.GREEDY, new Penalties(0.4, 0.2, 1.3), max, 0,
                            true, List.of(), Set.of(), false, -1);
                    case 2 -> new GenerationRequest(prompt, SamplingParams.GREEDY, Penalties.NONE, max, max / 2, false,
                            List.of(), Set.of(), false, -1);
                    default -> new GenerationRequest(prompt, SamplingParams.GREEDY, Penalties.NONE, max, 0, true,
                            List.of(), Set.of(), false, 3);
                });
            }
            oracle.learn(requests);
            List<Outputs> outputs = plainAndSpeculative(spec, requests);
            for (int i = 0; i < requests.size(); i++) {
                List<GenerationChunk> got = outputs.get(i).speculative();
                List<GenerationChunk> want = outputs.get(i).plain();
                assertEquals(tokens(want), tokens(got), "request " + i);
                assertEquals(want.getLast().finishReason(), got.getLast().finishReason(), "request " + i);
                List<TokenLogprob> wantLp = want.stream().flatMap(c -> c.logprobs().stream()).toList();
                List<TokenLogprob> gotLp = got.stream().flatMap(c -> c.logprobs().stream()).toList();
                assertEquals(wantLp.size(), gotLp.size(), "request " + i + ": logprobs");
                for (int j = 0; j < wantLp.size(); j++) {
                    assertEquals(wantLp.get(j).logprob(), gotLp.get(j).logprob(), 1e-3,
                            "request " + i + ", token " + j + ": logprob");
                }
            }
            assertTrue(spec.metrics().speculativeTotals()[1] > 0, "drafts were accepted");
            awaitIdle(spec);
        }
    }

    // ---- sampling and pages

    @Test
    void samplingWithSpeculationIsSeededAndGivesPagesBack() {
        try (Running spec = start(SpeculativeLimits.chain(3), null)) {
            var sampling = new SamplingParams(1.5, 40, 0.95, 0.01, 77);
            int[] prompt = randomPrompt(new Random(26), 12);
            List<Integer> first = tokens(collect(spec, request(prompt, 24, sampling, List.of())));
            List<CompletableFuture<List<GenerationChunk>>> others = new ArrayList<>();
            Random random = new Random(27);
            for (int i = 0; i < 6; i++) {
                var other = new SamplingParams(0.7 + i * 0.3, 0, 1, 0, i);
                others.add(stream(spec, request(randomPrompt(random, 5 + i * 4), 10 + i, other, List.of()))
                        .collect().asList().subscribeAsCompletionStage());
            }
            List<Integer> again = tokens(collect(spec, request(prompt, 24, sampling, List.of())));
            others.forEach(CompletableFuture::join);
            assertEquals(24, first.size());
            assertEquals(first, again, "a seed gives the same sample whatever else runs");
            awaitIdle(spec);
        }
    }

    @Test
    void cancellingASpeculatingStreamFreesItsPages() {
        Oracle oracle = new Oracle(new SpeculativeLimits(3, 2, 6), 0.8);
        try (Running spec = start(oracle.limits, a -> oracle)) {
            GenerationRequest r = request(randomPrompt(new Random(28), 20), 60, SamplingParams.GREEDY, List.of());
            oracle.learn(List.of(r));
            List<GenerationChunk> got = stream(spec, r).select().first(5).collect().asList().await().atMost(WAIT);
            assertEquals(5, got.size());
            awaitIdle(spec);
        }
    }

    // ---- startup

    @Test
    void anAssistantOfAnotherModelIsAStartupError() throws URISyntaxException {
        Path other = Path.of(getClass().getResource("/golden/tiny-e4b-assistant").toURI());
        var settings = SpeculativeSettings.resolve(java.util.Optional.empty(), java.util.Optional.of(other.toString()),
                java.util.OptionalInt.empty(), java.util.OptionalInt.empty(), java.util.OptionalInt.empty()).orElseThrow();
        TextConfig config = TextConfig.load(targetDir);
        KvGeometry kv = new KvBudget(config, Float.BYTES).forSequences(2, 32, 4, 16);
        try (Gemma4Model model = new Gemma4Model(config, Checkpoint.open(targetDir), new CpuBackend(), kv)) {
            ConfigException e = assertThrows(ConfigException.class, () -> SpeculativeDecoding.load(settings, model,
                    new EngineMetrics(new SimpleMeterRegistry(), Tags.empty())));
            assertTrue(e.getMessage().contains("does not fit the served model") && e.getMessage().contains("KV heads"),
                    e.getMessage());
        }
    }

    @Test
    void theEmbeddedAssistantBesideAnotherModelIsAStartupErrorNamingIt() {
        var settings = SpeculativeSettings.resolve(java.util.Optional.empty(), java.util.Optional.of("embedded"),
                java.util.OptionalInt.empty(), java.util.OptionalInt.empty(), java.util.OptionalInt.empty()).orElseThrow();
        TextConfig config = TextConfig.load(targetDir);
        KvGeometry kv = new KvBudget(config, Float.BYTES).forSequences(2, 32, 4, 16);
        try (Gemma4Model model = new Gemma4Model(config, Checkpoint.open(targetDir), new CpuBackend(), kv)) {
            ConfigException e = assertThrows(ConfigException.class, () -> SpeculativeDecoding.load(settings, model,
                    new EngineMetrics(new SimpleMeterRegistry(), Tags.empty())));
            assertTrue(e.getMessage().startsWith("jemma-embedded-assistant (the embedded model's assistant): the "
                    + "assistant does not fit the served model"), e.getMessage());
        }
    }

    // ---- helpers

    /**
     * Drafts that know the greedy continuation (from plain decoding) and are right with a given chance: chains of
     * the request's depth; trees with a right and a wrong child at each depth, in random order.
     */
    static final class Oracle implements DraftSource {
        final SpeculativeLimits limits;
        final double rightChance;
        final Map<Integer, int[]> truth = new ConcurrentHashMap<>();   // prompt + greedy tokens, by prompt hash
        final Random random = new Random(11);
        final AtomicInteger rightSecond = new AtomicInteger();

        Oracle(SpeculativeLimits limits, double rightChance) {
            this.limits = limits;
            this.rightChance = rightChance;
        }

        /** Learns the requests' plain greedy continuations (up to 64 tokens). */
        void learn(List<GenerationRequest> requests) {
            for (GenerationRequest r : requests) {
                List<Integer> out = tokens(collect(plain, request(r.promptIds(), 64, SamplingParams.GREEDY, List.of())));
                int[] all = IntStream.concat(IntStream.of(r.promptIds()), out.stream().mapToInt(Integer::intValue)).toArray();
                truth.put(java.util.Arrays.hashCode(r.promptIds()), all);
            }
        }

        @Override
        public synchronized List<DraftTree> draft(List<Drafter.Request> requests) {
            List<DraftTree> out = new ArrayList<>();
            for (Drafter.Request r : requests) {
                int[] t = truth.get(ORACLE_PROMPTS.getOrDefault(r.sequenceId(), 0));
                int pos = r.cachedLength();
                if (r.tree()) {
                    out.add(tree(r, t, pos));
                } else {
                    int depth = Math.min(limits.numSteps(), r.maxDepth());
                    int[] drafted = new int[depth];
                    for (int k = 1; k <= depth; k++) {
                        int right = right(t, pos + k);
                        drafted[k - 1] = random.nextDouble() < rightChance ? right : wrong(right);
                    }
                    out.add(DraftTree.chain(r.lastToken(), drafted, null));
                }
            }
            return out;
        }

        private DraftTree tree(Drafter.Request r, int[] t, int pos) {
            List<Integer> tokens = new ArrayList<>(List.of(r.lastToken()));
            List<Integer> parents = new ArrayList<>(List.of(-1));
            int spine = 0;
            for (int depth = 1; depth <= limits.numSteps() && tokens.size() + 2 <= limits.numDraftTokens(); depth++) {
                int right = right(t, pos + depth);
                int first = random.nextDouble() < rightChance ? right : wrong(right);
                int second = wrong(right);
                boolean rightIsSecond = random.nextBoolean();
                tokens.add(rightIsSecond ? second : first);
                parents.add(spine);
                tokens.add(rightIsSecond ? first : second);
                parents.add(spine);
                if (rightIsSecond && first == right) {
                    rightSecond.incrementAndGet();
                }
                spine = rightIsSecond ? tokens.size() - 1 : tokens.size() - 2;
            }
            return new DraftTree(tokens.stream().mapToInt(Integer::intValue).toArray(),
                    parents.stream().mapToInt(Integer::intValue).toArray(), new float[tokens.size()][]);
        }

        private int right(int[] t, int position) {
            return t != null && position < t.length ? t[position] : 7 + random.nextInt(400);
        }

        private int wrong(int right) {
            return 7 + (right - 7 + 1 + random.nextInt(400)) % 505;
        }
    }

    private static void assertSameAsPlain(Running spec, List<GenerationRequest> requests) {
        List<Outputs> outputs = plainAndSpeculative(spec, requests);
        for (int i = 0; i < requests.size(); i++) {
            List<GenerationChunk> want = outputs.get(i).plain();
            List<GenerationChunk> got = outputs.get(i).speculative();
            assertEquals(tokens(want), tokens(got), "request " + i);
            assertEquals(text(want), text(got), "request " + i);
            assertEquals(want.getLast().finishReason(), got.getLast().finishReason(), "request " + i);
        }
        awaitIdle(spec);
    }

    /** One request's chunks without speculation and with it. */
    private record Outputs(List<GenerationChunk> plain, List<GenerationChunk> speculative) {
    }

    /** Each request alone on the plain engine, then all of them together on {@code spec}. */
    private static List<Outputs> plainAndSpeculative(Running spec, List<GenerationRequest> requests) {
        List<List<GenerationChunk>> expected = new ArrayList<>();
        for (GenerationRequest r : requests) {
            expected.add(collect(plain, r));
        }
        List<CompletableFuture<List<GenerationChunk>>> together = new ArrayList<>();
        for (GenerationRequest r : requests) {
            together.add(stream(spec, r).collect().asList().subscribeAsCompletionStage());
        }
        List<Outputs> out = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) {
            out.add(new Outputs(expected.get(i), together.get(i).join()));
        }
        return out;
    }

    private static List<GenerationRequest> requests(Random random, int n, SamplingParams sampling) {
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(request(randomPrompt(random, 2 + random.nextInt(40)), 1 + random.nextInt(30), sampling, List.of()));
        }
        return out;
    }

    private static GenerationRequest request(int[] prompt, int maxTokens, SamplingParams sampling, List<String> stop) {
        return new GenerationRequest(prompt, sampling, Penalties.NONE, maxTokens, 0, true, stop, Set.of(), false, -1);
    }

    private static Multi<GenerationChunk> stream(Running r, GenerationRequest request) {
        int id = IDS.incrementAndGet();
        ORACLE_PROMPTS.put(id, java.util.Arrays.hashCode(request.promptIds()));
        return r.scheduler().generate(id, request);
    }

    /** Sequence id -> prompt hash, for the oracles (they see sequence ids only). */
    static final Map<Integer, Integer> ORACLE_PROMPTS = new ConcurrentHashMap<>();

    private static List<GenerationChunk> collect(Running r, GenerationRequest request) {
        return stream(r, request).collect().asList().await().atMost(WAIT);
    }

    private static List<Integer> tokens(List<GenerationChunk> chunks) {
        return chunks.stream().flatMap(c -> c.tokenIds().stream()).toList();
    }

    private static String text(List<GenerationChunk> chunks) {
        return String.join("", chunks.stream().map(GenerationChunk::text).toList());
    }

    private static int[] randomPrompt(Random random, int length) {
        int[] p = new int[length];
        p[0] = 2;
        for (int i = 1; i < length; i++) {
            p[i] = 7 + random.nextInt(505);
        }
        return p;
    }

    private static void awaitIdle(Running r) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            if (r.scheduler().idle() && r.model().kvCache().usedPages() == 0 && r.model().kvCache().sequenceCount() == 0) {
                return;
            }
            Thread.onSpinWait();
        }
        throw new AssertionError("not idle: " + r.scheduler().runningCount() + " running, "
                + r.model().kvCache().usedPages() + " pages in use");
    }
}
