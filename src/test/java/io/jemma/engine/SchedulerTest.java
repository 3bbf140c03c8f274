package io.jemma.engine;

import io.jemma.attention.KvGeometry;
import io.jemma.backend.cpu.CpuBackend;
import io.jemma.engine.sampling.Penalties;
import io.jemma.engine.sampling.SamplingParams;
import io.jemma.model.Gemma4Model;
import io.jemma.model.KvBudget;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import io.jemma.tokenizer.Tokenizer;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.smallrye.mutiny.Multi;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The continuous-batching scheduler on the real tiny checkpoint: batching, chunked prefill, stop
 * conditions, seeded sampling and cancellation, with the KV pages checked after each.
 */
class SchedulerTest {
    private static final Duration WAIT = Duration.ofSeconds(60);

    static Gemma4Model model;
    static Tokenizer tokenizer;
    static Scheduler scheduler;
    static SimpleMeterRegistry registry = new SimpleMeterRegistry();
    static final AtomicInteger ids = new AtomicInteger();

    @BeforeAll
    static void start() throws Exception {
        Path dir = Path.of(SchedulerTest.class.getResource("/golden/tiny-31b").toURI());
        TextConfig config = TextConfig.load(dir);
        KvGeometry kv = new KvBudget(config, Float.BYTES).forSequences(64, 96, 4, 8);
        model = new Gemma4Model(config, Checkpoint.open(dir), new CpuBackend(), kv);
        tokenizer = Tokenizer.load(dir);
        // A small chunked-prefill budget, so long prompts are split and mixed with running decodes.
        scheduler = new Scheduler(model, tokenizer, new Scheduler.Settings(64, 256, 8), Set.of(1, 6),
                new EngineMetrics(registry, Tags.empty()));
        Thread t = new Thread(scheduler, "test-scheduler");
        t.setDaemon(true);
        t.start();
    }

    @AfterAll
    static void stop() {
        scheduler.stop();
        model.close();
    }

    @Test
    void sequencesBatchedTogetherGetTheSameTokensAsAlone() {
        Random random = new Random(7);
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            int[] prompt = randomPrompt(random, 2 + random.nextInt(40));
            requests.add(request(prompt, 1 + random.nextInt(24), SamplingParams.GREEDY, List.of()));
        }
        List<List<Integer>> alone = new ArrayList<>();
        for (GenerationRequest r : requests) {
            alone.add(tokens(collect(r)));
        }
        List<CompletableFuture<List<GenerationChunk>>> together = new ArrayList<>();
        for (GenerationRequest r : requests) {
            together.add(stream(r).collect().asList().subscribeAsCompletionStage());
        }
        for (int i = 0; i < requests.size(); i++) {
            assertEquals(alone.get(i), tokens(together.get(i).join()), "request " + i);
        }
        awaitIdle();
    }

    @Test
    void lengthStopsAtMaxTokensAndReportsUsage() {
        int[] prompt = randomPrompt(new Random(1), 30);
        List<GenerationChunk> chunks = collect(request(prompt, 17, SamplingParams.GREEDY, List.of()));
        GenerationChunk last = chunks.getLast();
        assertEquals(FinishReason.LENGTH, last.finishReason());
        assertEquals(17, last.completionTokens());
        assertEquals(30, last.promptTokens());
        assertEquals(17, tokens(chunks).size());
        awaitIdle();
    }

    @Test
    void aStopStringAcrossTokensEndsTheTextBeforeIt() {
        int[] prompt = randomPrompt(new Random(2), 12);
        List<GenerationChunk> free = collect(request(prompt, 40, SamplingParams.GREEDY, List.of()));
        String text = text(free);
        assertTrue(text.length() > 12, "need some text to cut: " + text);
        String stop = text.substring(5, 9);
        int expectedEnd = text.indexOf(stop);
        List<GenerationChunk> cut = collect(request(prompt, 40, SamplingParams.GREEDY, List.of(stop)));
        assertEquals(text.substring(0, expectedEnd), text(cut));
        assertEquals(FinishReason.STOP, cut.getLast().finishReason());
        awaitIdle();
    }

    @Test
    void aSeedGivesTheSameSampleWhateverElseIsRunning() {
        int[] prompt = randomPrompt(new Random(3), 10);
        var sampling = new SamplingParams(1.0, 0, 1.0, 0, 1234);
        List<Integer> alone = tokens(collect(request(prompt, 20, sampling, List.of())));
        List<CompletableFuture<List<GenerationChunk>>> others = new ArrayList<>();
        Random random = new Random(4);
        for (int i = 0; i < 8; i++) {
            others.add(stream(request(randomPrompt(random, 20), 20, new SamplingParams(1.0, 0, 1, 0, i), List.of()))
                    .collect().asList().subscribeAsCompletionStage());
        }
        List<Integer> busy = tokens(collect(request(prompt, 20, sampling, List.of())));
        others.forEach(CompletableFuture::join);
        assertEquals(alone, busy);
        List<Integer> otherSeed = tokens(collect(request(prompt, 20, new SamplingParams(1.0, 0, 1, 0, 99), List.of())));
        assertFalse(alone.equals(otherSeed), "a different seed should sample differently");
        awaitIdle();
    }

    @Test
    void cancellingAStreamFreesItsPages() {
        int[] prompt = randomPrompt(new Random(5), 20);
        List<GenerationChunk> got = stream(request(prompt, 60, SamplingParams.GREEDY, List.of()))
                .select().first(3).collect().asList().await().atMost(WAIT);
        assertEquals(3, got.size());
        awaitIdle();
        assertTrue(registry.get("jemma_aborted_requests").counter().count() >= 1);
    }

    private static GenerationRequest request(int[] prompt, int maxTokens, SamplingParams sampling, List<String> stop) {
        return new GenerationRequest(prompt, sampling, Penalties.NONE, maxTokens, 0, true, stop, Set.of(), false, -1);
    }

    private static Multi<GenerationChunk> stream(GenerationRequest r) {
        return scheduler.generate(ids.incrementAndGet(), r);
    }

    private static List<GenerationChunk> collect(GenerationRequest r) {
        return stream(r).collect().asList().await().atMost(WAIT);
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
            p[i] = 7 + random.nextInt(505); // skip the special tokens
        }
        return p;
    }

    /** Waits until the scheduler has retired everything and every KV page is back. */
    private static void awaitIdle() {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            if (scheduler.idle() && model.kvCache().usedPages() == 0 && model.kvCache().sequenceCount() == 0) {
                return;
            }
            Thread.onSpinWait();
        }
        throw new AssertionError("not idle: " + scheduler.runningCount() + " running, "
                + model.kvCache().usedPages() + " pages in use");
    }
}
