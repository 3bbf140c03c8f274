package io.jemma.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.attention.SequenceChunk;
import io.jemma.engine.sampling.Sampler;
import io.jemma.model.Gemma4Model;
import io.jemma.model.Bf16RoundingBackend;
import io.jemma.model.GoldenCheckpoint;
import io.jemma.backend.cpu.CpuBackend;
import io.jemma.model.KvBudget;
import io.jemma.model.RoutingRecorder;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import io.jemma.model.weights.SafetensorsFile;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole dense model on the CUDA backend against transformers (the golden tiny-31b checkpoint, see
 * io.jemma.model.GoldenModelTest for the CPU version): logits at every prompt position, decode steps
 * through the bf16 KV cache fed transformers' greedy tokens, and all prompts batched together. Bound:
 * bf16 GEMM operands and KV, so max |ours - transformers| within {@value #TOLERANCE} of the reference
 * logits' range; the greedy token must match wherever transformers' top two differ by more than twice
 * that bound. Both the dense tiny-31b and the MoE tiny-moe (routed experts on the GPU: MoeKernels).
 */
@Tag("gpu")
class GoldenModelGpuTest {
    /**
     * Against transformers' fp32: bf16 GEMM operands and KV alone move the logits up to ~4.5e-2 here, the bf16
     * prefill projections (CudaBackend.BF16_PROJECTIONS) up to 6.4e-2. A row over it still passes within the worst
     * deviation of transformers' own bf16 forward on the checkpoint (GoldenCheckpoint.transformersBf16Deviation,
     * tiny-31b: 1.03e-1 with sdpa, 8.2e-2 eager, median 1.8e-2; tools/reference/bf16_deviation.py): 6e-2 alone would
     * hold us to more than bf16 gives the reference implementation. Kernel errors are caught by the tighter
     * comparison with the CPU simulation ({@link #SIMULATION_TOLERANCE}).
     */
    private static final double TOLERANCE = 6e-2;
    /**
     * tiny-moe against transformers' fp32 (or, where the GPU chose other experts at a near tie, against the
     * CPU's fp32 with the GPU's choice: see {@link Twin}). Its weights are stored in fp32 and rounded to bf16
     * on upload, on top of the bf16 GEMM operands and KV; and its router (4 experts, top 2, random weights)
     * is sensitive: without any change of expert, the CPU with the GPU's roundings (Bf16RoundingBackend)
     * deviates up to 8e-2 of the range from transformers (a near-tied pair's weights move). The expert
     * kernels themselves are held to tight bounds in MoeGpuTest.
     */
    private static final double MOE_TOLERANCE = 0.3;
    /**
     * Against the CPU backend with the same bf16 roundings: the kernels themselves. Not zero: GEMM and
     * reduction orders differ, and a value near a bf16 rounding boundary can round the other way and
     * carry a 2^-9 step through the later layers (up to 8.2e-3 seen on the H200 over 98 rows with the
     * fp32 attention); the tensor-core attention (TritonAttention) also rounds its softmax weights to
     * bf16, which the simulation cannot reproduce step for step (about 2e-3 relative per attention, see
     * AttentionGpuTest): up to 1.56e-2 seen with it. A wrong index or position shows as 1e-1 and more.
     * tiny-moe: the simulation takes the GPU's expert choice at near ties (else a flipped choice alone
     * moves a row by 0.1 to 0.5 of the range). 5e-2 since the prefill's gate and up come out of their GEMMs
     * as bf16 (Backend.gatedMlpInput; the simulation rounds them too): one more rounding point whose
     * near-boundary flips (GPU and CPU sum in different orders) move single rows; on the H200 the worst of
     * 196 rows became 3.88e-2 (tiny-31b, one teacher-forced decode row after such a prefill), the rest stayed
     * under 2.8e-2; without the simulation's rounding tiny-moe reached 3.14e-2 instead.
     */
    private static final double SIMULATION_TOLERANCE = 5e-2;

    private static Twin open(GoldenCheckpoint golden) {
        String name = golden.name();
        TextConfig config = TextConfig.load(golden.dir());
        KvGeometry kv = new KvBudget(config, 2).forSequences(8, 128, 4, 128);
        KvGeometry cpuKv = new KvBudget(config, Float.BYTES).forSequences(8, 128, 4, 128);
        GpuTests.gpu();   // the availability check and the debug sync property
        if (config.numExperts().isEmpty()) {
            // The prompts are short: bf16 projection outputs (prefill chunks of 512 rows and more) from 5 rows, so
            // that their roundings are checked against transformers too.
            CudaBackend backend = new CudaBackend();
            backend.bf16ProjectionsFromRows(5);
            Gemma4Model gpu = new Gemma4Model(config, Checkpoint.open(golden.dir()), backend, kv);
            Gemma4Model simulation = new Gemma4Model(config, Checkpoint.open(golden.dir()),
                    new Bf16RoundingBackend(new CpuBackend()).bf16ProjectionsFromRows(5), cpuKv);
            return new Twin(name, gpu, simulation, null, null);
        }
        // Routed experts: the GPU's router logits are recorded per forward; the CPU models follow its choice
        // where it differs from theirs by a near tie (RoutingRecorder.NEAR_TIE) and fail where it does not.
        CudaBackend backend = new CudaBackend();
        backend.bf16ProjectionsFromRows(5);
        RoutingRecorder gpuRouting = new RoutingRecorder(backend);
        Gemma4Model gpu = new Gemma4Model(config, Checkpoint.open(golden.dir()), gpuRouting, kv);
        Gemma4Model simulation = new Gemma4Model(config, Checkpoint.open(golden.dir()),
                new RoutingRecorder(new Bf16RoundingBackend(new CpuBackend()).bf16ProjectionsFromRows(5)).follow(gpuRouting,
                        RoutingRecorder.NEAR_TIE), cpuKv);
        RoutingRecorder exactRouting = new RoutingRecorder(new CpuBackend()).follow(gpuRouting, RoutingRecorder.NEAR_TIE);
        Gemma4Model exact = new Gemma4Model(config, Checkpoint.open(golden.dir()), exactRouting,
                new KvBudget(config, Float.BYTES).forSequences(8, 128, 4, 128));
        return new Twin(name, gpu, simulation, exact, exactRouting);
    }

    /**
     * The model on the GPU and, step for step, on the CPU with the GPU's bf16 roundings: every forward's
     * GPU logits must match the simulation's within {@link #SIMULATION_TOLERANCE} of their range (collected,
     * asserted by {@link #assertSimulationMatched} after the checks against transformers).
     *
     * <p>With routed experts also the CPU backend in fp32 (what transformers computes, to 1e-3 of the range:
     * GoldenModelTest), and both CPU models follow the GPU's expert choice where it differs from theirs by a
     * near tie. A row is compared with transformers unless its sequence had such a takeover in the exact
     * model at its position or before (attention carries a token's other experts to the later positions);
     * then with the exact model, which is transformers' computation with the GPU's choice: every row is held
     * to the same bound, none is skipped, and the takeovers are counted and reported (golden-near-ties).
     */
    private static final class Twin implements AutoCloseable {
        private final String name;
        private final Gemma4Model gpu;
        private final Gemma4Model simulation;
        private final Gemma4Model exact;
        private final RoutingRecorder exactRouting;
        /** Per sequence: the first position whose expert choice the exact model took over from the GPU. */
        private final Map<Integer, Integer> firstTakeover = new HashMap<>();
        private final List<String> simulationFailures = new ArrayList<>();
        private float[] exactLogits;
        private int takeovers;
        private int reroutedRows;
        private int rows;

        Twin(String name, Gemma4Model gpu, Gemma4Model simulation, Gemma4Model exact, RoutingRecorder exactRouting) {
            this.name = name;
            this.gpu = gpu;
            this.simulation = simulation;
            this.exact = exact;
            this.exactRouting = exactRouting;
        }

        TextConfig config() {
            return gpu.config();
        }

        void startSequence(int id, int maxLength) {
            gpu.startSequence(id, maxLength);
            simulation.startSequence(id, maxLength);
            if (exact != null) {
                exact.startSequence(id, maxLength);
            }
            firstTakeover.remove(id);
        }

        void release(int id) {
            gpu.release(id);
            simulation.release(id);
            if (exact != null) {
                exact.release(id);
            }
            firstTakeover.remove(id);
        }

        float[] forward(ForwardBatch batch, int[] ids, int[] rows) {
            float[] ours = gpu.forward(batch, ids, rows);
            if (exact != null) {
                exactLogits = exact.forward(batch, ids, rows);
                for (RoutingRecorder.Takeover t : exactRouting.takeovers()) {
                    SequenceChunk c = chunkOf(batch, t.row());
                    int position = c.position(t.row() - c.firstRow());
                    firstTakeover.merge(c.sequenceId(), position, Math::min);
                    takeovers++;
                    GpuReport.check("golden-near-ties", name + " sequence " + c.sequenceId() + " position " + position
                            + " " + t, t.gap(), RoutingRecorder.NEAR_TIE, true);
                    System.out.println(name + ": the GPU chose other experts than the CPU (fp32) at a near tie, sequence "
                            + c.sequenceId() + " position " + position + ": " + t);
                }
            }
            float[] simulated = simulation.forward(batch, ids, rows);
            int vocab = config().vocabSize();
            for (int r = 0; r < rows.length; r++) {
                float[] want = Arrays.copyOfRange(simulated, r * vocab, (r + 1) * vocab);
                float[] got = Arrays.copyOfRange(ours, r * vocab, (r + 1) * vocab);
                var d = GoldenCheckpoint.LogitDeviation.of(want, got);
                double tolerance = SIMULATION_TOLERANCE;
                boolean ok = d.within(tolerance);
                GpuReport.check("golden-vs-bf16-cpu", name + " rows " + Arrays.toString(rows) + " row " + r,
                        d.relative(), tolerance, ok);
                if (!ok) {
                    simulationFailures.add(String.format("%s rows %s row %d: max |diff| %.3g > %.3g", name,
                            Arrays.toString(rows), r, d.worst(), tolerance * d.range()));
                }
            }
            return ours;
        }

        /**
         * The reference for output row {@code r} of the last forward, at {@code position} of
         * {@code sequence}: transformers' {@code expected}, or the exact model's row where that sequence's
         * expert choice was taken over from the GPU at this position or before.
         */
        Reference reference(float[] expected, int sequence, int position, int r) {
            rows++;
            Integer first = firstTakeover.get(sequence);
            if (first == null || first > position) {
                return new Reference(expected, false);
            }
            reroutedRows++;
            int vocab = config().vocabSize();
            return new Reference(Arrays.copyOfRange(exactLogits, r * vocab, (r + 1) * vocab), true);
        }

        /** The simulation comparisons, after the checks against transformers (their numbers come first). */
        void assertSimulationMatched() {
            if (exact != null) {
                System.out.printf("%s: %d near-tie takeovers; %d of %d rows compared with the CPU (fp32) following "
                        + "the GPU's experts instead of transformers%n", name, takeovers, reroutedRows, rows);
            }
            assertTrue(simulationFailures.isEmpty(), "GPU vs CPU with bf16 roundings: " + simulationFailures.size()
                    + " rows over the bound, e.g. " + simulationFailures.subList(0, Math.min(5, simulationFailures.size())));
        }

        private static SequenceChunk chunkOf(ForwardBatch batch, int row) {
            for (SequenceChunk c : batch.chunks()) {
                if (row >= c.firstRow() && row < c.firstRow() + c.tokens()) {
                    return c;
                }
            }
            throw new IllegalArgumentException("row " + row + " outside " + batch);
        }

        @Override
        public void close() {
            gpu.close();
            simulation.close();
            if (exact != null) {
                exact.close();
            }
        }
    }

    /** What a row is compared with: transformers' logits, or the CPU's with the GPU's near-tie choices. */
    private record Reference(float[] logits, boolean rerouted) {
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-31b", "tiny-moe"})
    void promptsAndTeacherForcedDecodeMatchTransformers(String name) {
        GoldenCheckpoint golden = GoldenCheckpoint.load(name);
        double bf16 = golden.transformersBf16Deviation();
        try (var model = open(golden); SafetensorsFile ref = golden.openReference()) {
            int vocab = model.config().vocabSize();
            for (var p : golden.prompts()) {
                int n = p.ids().length;
                model.startSequence(p.index(), n + golden.decodeLogitSteps() + 1);
                float[] logits = model.forward(ForwardBatch.of(new int[][] {{p.index(), 0, n}}), p.ids(),
                        IntStream.range(0, n).toArray());
                float[] prefill = golden.prefillLogits(ref, p);
                for (int t = 0; t < n; t++) {
                    check(golden.name(), model.reference(Arrays.copyOfRange(prefill, t * vocab, (t + 1) * vocab),
                                    p.index(), t, t), Arrays.copyOfRange(logits, t * vocab, (t + 1) * vocab),
                            "prompt " + p.index() + " position " + t, t == n - 1 ? p.greedy()[0] : -1, bf16);
                }
                float[] decode = golden.decodeLogits(ref, p);
                for (int step = 0; step < golden.decodeLogitSteps(); step++) {
                    logits = model.forward(ForwardBatch.of(new int[][] {{p.index(), n + step, 1}}),
                            new int[] {p.greedy()[step]}, new int[] {0});
                    check(golden.name(), model.reference(Arrays.copyOfRange(decode, step * vocab, (step + 1) * vocab),
                                    p.index(), n + step, 0), logits,
                            "prompt " + p.index() + " decode step " + (step + 1), p.greedy()[step + 1], bf16);
                }
                model.release(p.index());
            }
            model.assertSimulationMatched();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-31b", "tiny-moe"})
    void batchedPrefillAndDecodeMatchTransformers(String name) {
        GoldenCheckpoint golden = GoldenCheckpoint.load(name);
        double bf16 = golden.transformersBf16Deviation();
        try (var model = open(golden); SafetensorsFile ref = golden.openReference()) {
            int vocab = model.config().vocabSize();
            List<GoldenCheckpoint.Prompt> prompts = golden.prompts();
            var batch = golden.batchedPrompts(100);
            for (int i = 0; i < prompts.size(); i++) {
                model.startSequence(100 + i, prompts.get(i).ids().length + golden.decodeLogitSteps() + 1);
            }
            float[] logits = model.forward(ForwardBatch.of(batch.layout()), batch.ids(), batch.lastRows());
            for (int i = 0; i < prompts.size(); i++) {
                var p = prompts.get(i);
                int n = p.ids().length;
                check(golden.name(), model.reference(Arrays.copyOfRange(golden.prefillLogits(ref, p), (n - 1) * vocab,
                                n * vocab), 100 + i, n - 1, i),
                        Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab), "batched prompt " + i, p.greedy()[0],
                        bf16);
            }
            for (int step = 0; step < golden.decodeLogitSteps(); step++) {
                int[][] decode = new int[prompts.size()][];
                int[] next = new int[prompts.size()];
                for (int i = 0; i < prompts.size(); i++) {
                    var p = prompts.get(i);
                    decode[i] = new int[] {100 + i, p.ids().length + step, 1};
                    next[i] = p.greedy()[step];
                }
                logits = model.forward(ForwardBatch.of(decode), next, IntStream.range(0, prompts.size()).toArray());
                for (int i = 0; i < prompts.size(); i++) {
                    var p = prompts.get(i);
                    check(golden.name(), model.reference(Arrays.copyOfRange(golden.decodeLogits(ref, p), step * vocab,
                                    (step + 1) * vocab), 100 + i, p.ids().length + step, i),
                            Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab),
                            "batched decode " + i + " step " + (step + 1), p.greedy()[step + 1], bf16);
                }
            }
            model.assertSimulationMatched();
        }
    }

    /**
     * Logits within the bound, or (rows over it) within {@code bf16}, the worst deviation of transformers' own bf16
     * forward from its fp32 on this checkpoint (0 where not recorded); {@code greedy} (transformers' next token, or
     * -1) must be our argmax where the reference's margin is clear (rows whose reference follows the GPU's experts at
     * a near tie are checked against it, without the greedy token, which is transformers').
     */
    private static void check(String name, Reference reference, float[] actual, String what, int greedy, double bf16) {
        float[] expected = reference.logits();
        assertEquals(expected.length, actual.length, what + ": logit count");
        var d = GoldenCheckpoint.LogitDeviation.of(expected, actual);
        double tolerance = name.equals("tiny-moe") ? MOE_TOLERANCE : TOLERANCE;
        double bound = tolerance * d.range();
        String against = reference.rerouted() ? "CPU fp32 with the GPU's near-tie experts" : "transformers";
        if (!d.within(tolerance) && !reference.rerouted() && bf16 > tolerance) {
            GpuReport.check("golden-vs-transformers-bf16", name + " " + what, d.relative(), bf16, d.relative() <= bf16);
            assertTrue(d.relative() <= bf16, String.format("%s: max |diff| %.3g of the range, over %.3g and over the"
                    + " %.3g that transformers' own bf16 forward reaches on this checkpoint", what, d.relative(),
                    tolerance, bf16));
        } else {
            GpuReport.check(reference.rerouted() ? "golden-rerouted" : "golden", name + " " + what, d.relative(),
                    tolerance, d.within(tolerance));
            assertTrue(d.within(tolerance), String.format("%s: max |diff| %.3g at %d (ours %f, %s %f) > %.3g",
                    what, d.worst(), d.at(), actual[d.at()], against, expected[d.at()], bound));
        }
        if (greedy >= 0 && !reference.rerouted()) {
            int ref = Sampler.argmax(expected, 0, expected.length);
            float second = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < expected.length; i++) {
                if (i != ref) {
                    second = Math.max(second, expected[i]);
                }
            }
            if (ref == greedy && expected[ref] - second > 2 * bound) {
                assertEquals(greedy, Sampler.argmax(actual, 0, actual.length), what + ": greedy token");
            }
        }
    }
}
