package io.jemma.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.backend.cuda.CudaAvailability;
import io.jemma.backend.cuda.CudaBackend;
import io.jemma.engine.sampling.Penalties;
import io.jemma.engine.sampling.SamplingParams;
import io.jemma.model.Gemma4Assistant;
import io.jemma.model.Gemma4Model;
import io.jemma.model.GoldenCheckpoint;
import io.jemma.model.KvBudget;
import io.jemma.model.config.AssistantConfig;
import io.jemma.model.WeightSource;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import io.jemma.speculative.DraftSource;
import io.jemma.speculative.DraftTree;
import io.jemma.speculative.Drafter;
import io.jemma.speculative.SpeculativeLimits;
import io.jemma.tokenizer.Tokenizer;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Speculative decoding on the GPU, served by the real scheduler: the golden tiny-31b on the CUDA backend with its
 * golden assistant, 3-1-4 chains and topk-2 trees (6 draft tokens) on triton, with CUDA graphs (verify chunks and
 * the assistant's draft steps replayed) and without; and a model at the real head dims (256/512, dummy weights)
 * on trtllm_mha and triton with graphs, drafting the plain run's own continuation with 70% right tokens (a dummy
 * assistant would accept almost nothing). (trtllm_mha cannot serve tiny-31b: its kernels are compiled for head
 * dims 256 and 512, the tiny model's is 32.)
 * Twelve concurrent greedy requests of different lengths (the golden prompts and random ones) must give the
 * tokens decoding without speculation gives (the same model, no assistant, one request at a time). The verify
 * forward runs the draft rows as one chunk where plain decoding runs one row per step, so bf16 may legitimately
 * flip a near tie: at the first difference of a request, both tokens' logits in a teacher-forced run of the plain
 * model must be within {@link #TOLERANCE} of the logit range of each other, and the comparison of that request
 * stops there; any other difference fails. Rounds must have been verified and KV pages given back.
 */
@Tag("gpu")
class SpeculativeEngineGpuTest {
    /** EngineGpuTest's bound for a bf16 near tie. */
    private static final double TOLERANCE = 6e-2;
    /** The q_norm and k_norm weights of the real-head-dims model ({@link #conditioned}). */
    private static final float QK_NORM = 0.35f;
    private static final Duration WAIT = Duration.ofSeconds(120);
    private static final Set<Integer> EOS = Set.of(1, 106);

    private static Gemma4Model model(TextConfig config, WeightSource weights, String attention,
                                     SpeculativeLimits limits) {
        CudaAvailability a = CudaBackend.available();
        if (!a.available()) {
            fail(a.toString());
        }
        CudaBackend backend = new CudaBackend();
        backend.attentionBackend(attention);
        int rows = limits == null ? 1 : limits.numDraftTokens();
        int extra = limits == null ? 0 : SpeculativeDecoding.retainedBehindWindow(limits);
        KvGeometry kv = new KvBudget(config, backend.kvBytesPerElement()).forSequences(17, 160, 16,
                Math.max(64, rows) + extra);
        Gemma4Model m = new Gemma4Model(config, weights, backend, kv);
        if (limits == null) {
            m.useGraphs(16);     // the plain run as the engine serves it: decode steps from graphs
        }
        return m;
    }

    /** The golden tiny-31b (head dim 32: triton only) with its golden assistant drafting. */
    @ParameterizedTest(name = "{0} {1}-{2}-{3} graphs {4}")
    @CsvSource({"triton, 3, 1, 4, true", "triton, 3, 2, 6, true", "triton, 3, 1, 4, false"})
    void greedyWithSpeculationEqualsWithout(String attention, int steps, int topk, int draftTokens, boolean graphs)
            throws Exception {
        GoldenCheckpoint golden = GoldenCheckpoint.load("tiny-31b");
        Path assistantDir = Path.of(SpeculativeEngineGpuTest.class.getResource("/golden/tiny-31b-assistant").toURI());
        TextConfig config = TextConfig.load(golden.dir());
        SpeculativeLimits limits = new SpeculativeLimits(steps, topk, draftTokens);
        List<Gemma4Assistant> assistants = new ArrayList<>();
        try {
            compare(attention + " " + steps + "-" + topk + "-" + draftTokens + (graphs ? ", graphs" : ", eager"),
                    Tokenizer.load(golden.dir()), requests(golden, new Random(31)), limits, graphs,
                    l -> model(config, WeightSource.of(Checkpoint.open(golden.dir())), attention, l),
                    (target, metrics) -> {
                        Gemma4Assistant assistant = new Gemma4Assistant(AssistantConfig.load(assistantDir),
                                Checkpoint.open(assistantDir), target);
                        assistants.add(assistant);
                        return new SpeculativeDecoding(target, assistant, limits, metrics);
                    }, null);
            assertEquals(graphs, assistants.get(0).draftGraphs() > 0, "draft steps replayed from graphs");
        } finally {
            assistants.forEach(Gemma4Assistant::close);
        }
    }

    /**
     * Both attention backends at the real head dims (256 sliding, 512 full, k_eq_v: the /dummy-xqa shapes, the
     * golden tokenizer's 512 tokens), dummy weights, graphs on. A dummy assistant would accept almost nothing, so
     * the drafts come from the plain run's own continuation, each token right with probability 0.7: rounds accept
     * 0 to 3 drafts and roll the rest back, through the verify graphs of trtllm_mha (chains) and triton.
     */
    @ParameterizedTest(name = "{0} real head dims, oracle drafts")
    @CsvSource({"trtllm_mha", "triton"})
    void greedyWithSpeculationEqualsWithoutAtRealHeadDims(String attention) throws Exception {
        oracleChainsAtRealHeadDims(attention + " 3-1-4 at head dims 256/512, oracle drafts, graphs", attention, 3, 32);
    }

    /**
     * The /dummy-xqa-512 model (real head dims, dummy weights) on {@code attention} with graphs, drafting chains of
     * {@code steps} tokens from the plain run's own continuation (70% right), compared with decoding without.
     */
    private static void oracleChainsAtRealHeadDims(String what, String attention, int steps, long seed)
            throws Exception {
        GoldenCheckpoint golden = GoldenCheckpoint.load("tiny-31b");
        Path dir = Path.of(SpeculativeEngineGpuTest.class.getResource("/dummy-xqa-512").toURI());
        TextConfig config = TextConfig.load(dir);
        SpeculativeLimits limits = SpeculativeLimits.chain(steps);
        Map<Integer, int[]> known = new ConcurrentHashMap<>();
        compare(what, Tokenizer.load(golden.dir()), requests(golden, new Random(seed)), limits, true, l -> {
            Gemma4Model m = model(config, conditioned(WeightSource.dummy(config, 7)), attention, l);
            assertEquals(attention, m.attention().name());
            return m;
        }, (target, metrics) -> new SpeculativeDecoding(target, null, new OracleDrafts(limits, known, 0.7), limits,
                metrics), known);
    }

    /**
     * The dummy weights with q_norm and k_norm at {@link #QK_NORM} instead of 1. With norm weights of 1, q and k have
     * unit RMS, so attention scores (Gemma's attention scale is 1) reach tens at head dims 256 and 512, the softmax
     * is nearly one-hot and a 2^-9 change of one score (what running the draft rows as one verify chunk instead of one
     * row a step may do) can move the logits by a quarter of their range (session 3: rounding q alone on the CPU moved
     * them by 20-70%). At 0.35 the scores are a few units, as in a trained model, and bf16 differences stay near ties.
     */
    private static WeightSource conditioned(WeightSource dummy) {
        return new io.jemma.model.ForwardingWeightSource(dummy) {
            @Override
            public io.jemma.backend.Weight load(io.jemma.backend.Backend backend, String name, long... shape) {
                if (!name.endsWith("self_attn.q_norm.weight") && !name.endsWith("self_attn.k_norm.weight")) {
                    return delegate.load(backend, name, shape);
                }
                var data = java.lang.foreign.Arena.ofAuto().allocate(shape[0] * Float.BYTES, 64);
                for (long i = 0; i < shape[0]; i++) {
                    data.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED
                            .withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), i, QK_NORM);
                }
                return backend.load(new io.jemma.backend.HostTensor(name, io.jemma.backend.DType.F32, shape, data));
            }
        };
    }

    /**
     * Issue 6's dispatch end to end on the GPU: the choice startup makes (InferenceEngine.attentionChoice, page
     * size 16) for the 31B model's shapes and each speculative setting, then that backend serving speculative
     * rounds at the real head dims (oracle drafts, graphs): 3-1-4 on trtllm_mha; 5-1-6 and topk 2 on triton with
     * the reason naming the limit; an explicit trtllm_mha with 5-1-6 refused with a message naming it.
     */
    @ParameterizedTest(name = "{0} {1}-{2}-{3} -> {4}")
    @CsvSource({"auto, 3, 1, 4, trtllm_mha", "auto, 5, 1, 6, triton", "auto, 3, 2, 6, triton",
            "trtllm_mha, 5, 1, 6, error"})
    void dispatchPicksWhatTheSpeculativeSettingsAllowAndItServes(String requested, int steps, int topk, int draftTokens,
                                                                 String expected) throws Exception {
        SpeculativeLimits limits = new SpeculativeLimits(steps, topk, draftTokens);
        TextConfig real = io.jemma.model.config.BundledConfigs.load(io.jemma.model.config.BundledConfigs.GEMMA_4_31B);
        String setting = requested + " " + steps + "-" + topk + "-" + draftTokens;
        if (expected.equals("error")) {
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> InferenceEngine.attentionChoice(requested, real, true, limits, 16));
            System.out.println("dispatch " + setting + ": startup error: " + e.getMessage());
            org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("trtllm_mha")
                    && e.getMessage().contains(String.valueOf(draftTokens)), e.getMessage());
            io.jemma.backend.cuda.GpuReportAccess.check("speculative dispatch", setting + " refused at startup: "
                    + e.getMessage(), 0, 0, true);
            return;
        }
        var choice = InferenceEngine.attentionChoice(requested, real, true, limits, 16);
        System.out.println("dispatch " + setting + ": " + choice.reason());
        assertEquals(expected, choice.backend(), choice.reason());
        if (expected.equals("triton")) {
            org.junit.jupiter.api.Assertions.assertTrue(choice.reason().contains(topk > 1 ? "topk" : "draft"),
                    "the reason names the limit: " + choice.reason());
        }
        // The chosen backend serves rounds at the real head dims (trees: triton's alone; oracle drafts are chains).
        oracleChainsAtRealHeadDims("dispatch " + setting + " -> " + choice.backend() + ", oracle " + steps
                + "-token chains, graphs", choice.backend(), steps, 33);
    }

    /** Drafts a request's known greedy continuation, each token right with the given chance (else off by one). */
    private record OracleDrafts(SpeculativeLimits limits, Map<Integer, int[]> known, double rightChance)
            implements DraftSource {
        private static final Random RANDOM = new Random(5);

        @Override
        public synchronized List<DraftTree> draft(List<Drafter.Request> requests) {
            List<DraftTree> out = new ArrayList<>();
            for (Drafter.Request r : requests) {
                int[] all = known.get(r.sequenceId());   // prompt + plain greedy output
                int depth = Math.min(limits.numSteps(), r.maxDepth());
                int[] drafted = new int[depth];
                for (int k = 1; k <= depth; k++) {
                    int at = r.cachedLength() + k;
                    int right = at < all.length ? all[at] : 3;
                    drafted[k - 1] = RANDOM.nextDouble() < rightChance ? right : (right + 1) % 512;
                }
                out.add(DraftTree.chain(r.lastToken(), drafted, null));
            }
            return out;
        }
    }

    private interface SpecSetup {
        SpeculativeDecoding create(Gemma4Model target, EngineMetrics metrics);
    }

    /**
     * Runs the requests one at a time without speculation, then all together with it, and judges every difference
     * on a fresh plain model. {@code known}: filled with each speculative request's prompt + plain output by its
     * sequence id (oracle drafts), or null.
     */
    private static void compare(String what, Tokenizer tokenizer, List<GenerationRequest> requests,
                                SpeculativeLimits limits, boolean graphs,
                                java.util.function.Function<SpeculativeLimits, Gemma4Model> open, SpecSetup setup,
                                Map<Integer, int[]> known) throws Exception {
        List<List<Integer>> expected = new ArrayList<>();
        try (Gemma4Model plain = open.apply(null)) {
            Scheduler s = new Scheduler(plain, tokenizer, new Scheduler.Settings(16, 64, 64), EOS,
                    new EngineMetrics(new SimpleMeterRegistry(), Tags.empty()));
            Thread t = start(s);
            try {
                for (int i = 0; i < requests.size(); i++) {
                    expected.add(collect(s, 1 + i, requests.get(i)));
                }
            } finally {
                s.stop();
                t.join(10_000);
            }
        }
        if (known != null) {
            for (int i = 0; i < requests.size(); i++) {
                int[] prompt = requests.get(i).promptIds();
                known.put(100 + i, java.util.stream.IntStream.concat(java.util.Arrays.stream(prompt),
                        expected.get(i).stream().mapToInt(Integer::intValue)).toArray());
            }
        }

        List<List<Integer>> got = new ArrayList<>();
        long[] totals;
        boolean graphsOn;
        try (Gemma4Model target = open.apply(limits)) {
            EngineMetrics metrics = new EngineMetrics(new SimpleMeterRegistry(), Tags.empty());
            metrics.speculative(new SimpleMeterRegistry(), Tags.empty(), limits.numDraftTokens());
            SpeculativeDecoding spec = setup.create(target, metrics);
            if (graphs) {
                target.useGraphs(16, limits.numDraftTokens());   // after the retained positions are set, as the engine
            }
            Scheduler s = new Scheduler(target, tokenizer, new Scheduler.Settings(16, 64, 64), EOS, metrics, spec);
            Thread t = start(s);
            try {
                List<CompletableFuture<List<Integer>>> together = new ArrayList<>();
                for (int i = 0; i < requests.size(); i++) {
                    int id = 100 + i;
                    GenerationRequest r = requests.get(i);
                    together.add(CompletableFuture.supplyAsync(() -> collect(s, id, r)));
                }
                for (CompletableFuture<List<Integer>> f : together) {
                    got.add(f.get());
                }
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (target.kvCache().usedPages() > 0 && System.nanoTime() < deadline) {
                    Thread.sleep(20);
                }
                assertEquals(0, target.kvCache().usedPages(), what + ": pages left after the requests");
            } finally {
                s.stop();
                t.join(10_000);
            }
            totals = metrics.speculativeTotals();
            graphsOn = target.graphsEnabled();
        }
        assertTrue(totals[0] > 10, what + ": only " + totals[0] + " rounds verified");
        assertEquals(graphs, graphsOn, what + ": graphs on");

        // The differences, judged on a fresh plain model (teacher-forced, one request at a time).
        int identical = 0;
        int ties = 0;
        try (Gemma4Model reference = open.apply(null)) {
            for (int i = 0; i < requests.size(); i++) {
                List<Integer> want = expected.get(i);
                List<Integer> ours = got.get(i);
                int diverged = -1;
                for (int j = 0; j < Math.min(want.size(), ours.size()); j++) {
                    if (!want.get(j).equals(ours.get(j))) {
                        diverged = j;
                        break;
                    }
                }
                if (diverged < 0) {
                    assertEquals(want, ours, what + ", request " + i + ": lengths differ without a token differing");
                    identical++;
                    continue;
                }
                float[] logits = teacherForced(reference, requests.get(i).promptIds(), want, diverged);
                float min = Float.POSITIVE_INFINITY;
                float max = Float.NEGATIVE_INFINITY;
                for (float l : logits) {
                    min = Math.min(min, l);
                    max = Math.max(max, l);
                }
                double gap = Math.abs(logits[want.get(diverged)] - logits[ours.get(diverged)]);
                assertTrue(gap <= TOLERANCE * (max - min), String.format("%s, request %d: token %d is %d with "
                        + "speculation, %d without, not a near tie (gap %.3g of range %.3g); with %s, without %s",
                        what, i, diverged, ours.get(diverged), want.get(diverged), gap, max - min, ours, want));
                ties++;
            }
        }
        String line = String.format("%s: %d/%d requests identical, %d stop at a bf16 near tie; %d rounds, %d draft "
                + "tokens accepted (%.2f per round + the bonus token)", what, identical, requests.size(), ties,
                totals[0], totals[1], totals[1] / (double) totals[0]);
        System.out.println(line);
        io.jemma.backend.cuda.GpuReportAccess.check("speculative engine", line, ties, 0, true);
    }

    private static Thread start(Scheduler s) {
        Thread t = new Thread(s, "gpu-spec-test-scheduler");
        t.setDaemon(true);
        t.start();
        return t;
    }

    /** The golden prompts (32 tokens each) and random prompts of 2 to 60 tokens with 1 to 40 tokens to generate. */
    private static List<GenerationRequest> requests(GoldenCheckpoint golden, Random random) {
        List<GenerationRequest> out = new ArrayList<>();
        for (var p : golden.prompts()) {
            out.add(request(p.ids(), 32));
        }
        while (out.size() < 12) {
            int[] prompt = new int[2 + random.nextInt(59)];
            prompt[0] = 2;
            for (int i = 1; i < prompt.length; i++) {
                prompt[i] = 7 + random.nextInt(505);
            }
            out.add(request(prompt, 1 + random.nextInt(40)));
        }
        return out;
    }

    private static GenerationRequest request(int[] prompt, int maxTokens) {
        return new GenerationRequest(prompt, SamplingParams.GREEDY, Penalties.NONE, maxTokens, 0, true, List.of(),
                Set.of(), false, -1);
    }

    private static List<Integer> collect(Scheduler s, int id, GenerationRequest r) {
        List<Integer> tokens = new ArrayList<>();
        for (GenerationChunk c : s.generate(id, r).collect().asList().await().atMost(WAIT)) {
            tokens.addAll(c.tokenIds());
        }
        return tokens;
    }

    /** The model's logits after the prompt and the first {@code steps} tokens of {@code tokens}. */
    private static float[] teacherForced(Gemma4Model m, int[] prompt, List<Integer> tokens, int steps) {
        int id = 1000;
        int n = prompt.length;
        m.startSequence(id, n + steps + 1);
        try {
            float[] logits = m.forward(ForwardBatch.of(new int[][] {{id, 0, n}}), prompt, new int[] {n - 1});
            for (int s = 0; s < steps; s++) {
                logits = m.forward(ForwardBatch.of(new int[][] {{id, n + s, 1}}), new int[] {tokens.get(s)},
                        new int[] {0});
            }
            return logits;
        } finally {
            m.release(id);
        }
    }
}
