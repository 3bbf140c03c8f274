package io.jemma.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.jemma.attention.ForwardBatch;
import io.jemma.backend.cuda.CudaAvailability;
import io.jemma.backend.cuda.CudaBackend;
import io.jemma.engine.sampling.Penalties;
import io.jemma.engine.sampling.SamplingParams;
import io.jemma.model.Gemma4Model;
import io.jemma.model.GoldenCheckpoint;
import io.jemma.model.KvBudget;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import io.jemma.tokenizer.Tokenizer;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The engine on the GPU: the golden tiny-31b checkpoint loaded on the CUDA backend, served by the real
 * scheduler (continuous batching, sampling on the device), with decode steps replayed from CUDA graphs
 * and without. Its greedy continuations (32 tokens per prompt, each prompt alone, then all at once) must
 * be transformers'. Where bf16 could legitimately flip a token (transformers' token and ours within the
 * golden tolerance of each other in the GPU's own teacher-forced logits at that step), the comparison
 * stops there; any other difference fails.
 */
@Tag("gpu")
class EngineGpuTest {
    /** GoldenModelGpuTest's bound: bf16 GEMM operands and KV move logits by up to ~4.5e-2 of their range. */
    private static final double TOLERANCE = 6e-2;
    private static final int TOKENS = 32;

    /** The model and tokenizer as LoadedModel holds them (without the chat template, which needs Jinjava). */
    private record Loaded(TextConfig config, Gemma4Model model, Tokenizer tokenizer) implements AutoCloseable {
        @Override
        public void close() {
            model.close();
        }
    }

    private static Loaded load(GoldenCheckpoint golden, boolean graphs) {
        CudaAvailability a = CudaBackend.available();
        if (!a.available()) {
            fail(a.toString());
        }
        TextConfig config = TextConfig.load(golden.dir());
        Gemma4Model model = new Gemma4Model(config, Checkpoint.open(golden.dir()), new CudaBackend(),
                new KvBudget(config, 2).forSequences(8, 128, 16, 64));
        Loaded m = new Loaded(config, model, Tokenizer.load(golden.dir()));
        if (graphs) {
            m.model().useGraphs(8);
            m.model().captureGraphs();
            assertTrue(m.model().graphsEnabled(), "decode graphs were recorded");
        }
        return m;
    }

    private static List<Integer> collect(Scheduler s, int id, int[] prompt) {
        GenerationRequest r = new GenerationRequest(prompt, SamplingParams.GREEDY, Penalties.NONE, TOKENS, 0, true,
                List.of(), Set.of(), true, -1);
        List<Integer> tokens = new ArrayList<>();
        for (GenerationChunk c : s.generate(id, r).collect().asList().await().atMost(Duration.ofSeconds(60))) {
            tokens.addAll(c.tokenIds());
        }
        return tokens;
    }

    @ParameterizedTest(name = "graphs {0}")
    @ValueSource(booleans = {true, false})
    void greedyContinuationsThroughTheEngineMatchTransformers(boolean graphs) throws Exception {
        GoldenCheckpoint golden = GoldenCheckpoint.load("tiny-31b");
        try (Loaded m = load(golden, graphs); Loaded reference = load(golden, false)) {
            Scheduler s = new Scheduler(m.model(), m.tokenizer(), new Scheduler.Settings(8, 64, 64), Set.of(1, 106),
                    new EngineMetrics(new SimpleMeterRegistry(), Tags.empty()));
            Thread t = new Thread(s, "gpu-test-scheduler");
            t.setDaemon(true);
            t.start();
            try {
                List<GoldenCheckpoint.Prompt> prompts = golden.prompts();
                for (var p : prompts) {
                    check(reference, p, collect(s, p.index(), p.ids()), "graphs " + graphs + ", prompt " + p.index() + " alone");
                }
                // All at once: prefill chunks and decodes share steps, decodes run as one batch.
                List<java.util.concurrent.CompletableFuture<List<Integer>>> all = new ArrayList<>();
                for (var p : prompts) {
                    all.add(java.util.concurrent.CompletableFuture.supplyAsync(() -> collect(s, 100 + p.index(), p.ids())));
                }
                for (int i = 0; i < prompts.size(); i++) {
                    check(reference, prompts.get(i), all.get(i).get(), "graphs " + graphs + ", prompt " + i + " batched");
                }
                assertEquals(0, m.model().kvCache().usedPages(), "pages left after the requests");
            } finally {
                s.stop();
                t.join(10_000);
            }
        }
    }

    /**
     * Ours against transformers' greedy tokens; at the first difference, both tokens' logits in the GPU's
     * teacher-forced run (transformers' tokens fed back) must be within the tolerance of each other.
     */
    private static void check(Loaded reference, GoldenCheckpoint.Prompt p, List<Integer> ours, String what) {
        assertEquals(TOKENS, ours.size(), what + ": tokens generated");
        int[] want = Arrays.copyOf(p.greedy(), TOKENS);
        int diverged = -1;
        for (int i = 0; i < TOKENS; i++) {
            if (ours.get(i) != want[i]) {
                diverged = i;
                break;
            }
        }
        int matched = diverged < 0 ? TOKENS : diverged;
        String verdict = "";
        if (diverged >= 0) {
            float[] logits = teacherForced(reference, p, diverged);
            float min = Float.POSITIVE_INFINITY;
            float max = Float.NEGATIVE_INFINITY;
            for (float l : logits) {
                min = Math.min(min, l);
                max = Math.max(max, l);
            }
            double gap = Math.abs(logits[want[diverged]] - logits[ours.get(diverged)]);
            boolean tie = gap <= TOLERANCE * (max - min);
            verdict = String.format(" (near tie at token %d: gap %.3g of range %.3g)", diverged, gap, max - min);
            io.jemma.backend.cuda.GpuReportAccess.check("engine", what + ": " + matched + "/" + TOKENS + " tokens as transformers"
                    + verdict, tie ? 0 : 1, 0, tie);
            assertTrue(tie, what + ": token " + diverged + " is " + ours.get(diverged) + ", transformers " + want[diverged]
                    + verdict + "; ours " + ours + ", transformers " + Arrays.toString(want));
        } else {
            io.jemma.backend.cuda.GpuReportAccess.check("engine", what + ": 32/32 tokens as transformers", 0, 0, true);
        }
    }

    /** The GPU's logits after the prompt and transformers' first {@code steps} greedy tokens. */
    private static float[] teacherForced(Loaded m, GoldenCheckpoint.Prompt p, int steps) {
        TextConfig config = m.config();
        int id = 1000 + p.index();
        int n = p.ids().length;
        m.model().startSequence(id, n + steps + 1);
        try {
            float[] logits = m.model().forward(ForwardBatch.of(new int[][] {{id, 0, n}}), p.ids(), new int[] {n - 1});
            for (int s = 0; s < steps; s++) {
                logits = m.model().forward(ForwardBatch.of(new int[][] {{id, n + s, 1}}), new int[] {p.greedy()[s]},
                        new int[] {0});
            }
            assertEquals(config.vocabSize(), logits.length);
            return logits;
        } finally {
            m.model().release(id);
        }
    }
}
