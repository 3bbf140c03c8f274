package io.jemma.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.engine.sampling.Sampler;
import io.jemma.model.Gemma4Model;
import io.jemma.model.Bf16RoundingBackend;
import io.jemma.model.GoldenCheckpoint;
import io.jemma.backend.cpu.CpuBackend;
import io.jemma.model.KvBudget;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import io.jemma.model.weights.SafetensorsFile;
import java.util.Arrays;
import java.util.List;
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
    /** Against transformers' fp32: bf16 GEMM operands and KV alone move the logits up to ~4.5e-2 here. */
    private static final double TOLERANCE = 6e-2;
    /**
     * tiny-moe, against transformers' fp32 and against the simulation alike. Its router (4 experts, top 2,
     * random weights) has near ties: top-2 margins down to 3e-5 in probability, so a bf16 rounding anywhere
     * upstream can flip a token's expert choice, and a flipped choice moves that token's logits (and, through
     * attention, the later positions') by a tenth of their range. Measured on the CPU: with the GPU's bf16
     * roundings (Bf16RoundingBackend) the model deviates up to 0.137 of the range from transformers, and
     * variants with fewer bf16 roundings (only the KV cache, or no router operand) from 0.07 to 0.2; on the
     * H200 the GPU deviates from the simulation by up to 0.16, where its sums, in another order, flip other
     * roundings. The expert kernels themselves are held to tight bounds in MoeGpuTest.
     */
    private static final double MOE_TOLERANCE = 0.3;
    /**
     * Against the CPU backend with the same bf16 roundings: the kernels themselves. Not zero: GEMM and
     * reduction orders differ, and a value near a bf16 rounding boundary can round the other way and
     * carry a 2^-9 step through the later layers (up to 8.2e-3 seen on the H200 over 98 rows with the
     * fp32 attention); the tensor-core attention (TritonAttention) also rounds its softmax weights to
     * bf16, which the simulation cannot reproduce step for step (about 2e-3 relative per attention, see
     * AttentionGpuTest): up to 1.56e-2 seen with it. A wrong index or position shows as 1e-1 and more.
     */
    private static final double SIMULATION_TOLERANCE = 3e-2;

    private static Twin open(GoldenCheckpoint golden) {
        String name = golden.name();
        TextConfig config = TextConfig.load(golden.dir());
        KvGeometry kv = new KvBudget(config, 2).forSequences(8, 128, 4, 128);
        GpuTests.gpu();   // the availability check and the debug sync property
        Gemma4Model gpu = new Gemma4Model(config, Checkpoint.open(golden.dir()), new CudaBackend(), kv);
        Gemma4Model simulation = new Gemma4Model(config, Checkpoint.open(golden.dir()),
                new Bf16RoundingBackend(new CpuBackend()), new KvBudget(config, Float.BYTES).forSequences(8, 128, 4, 128));
        return new Twin(name, gpu, simulation);
    }

    /**
     * The model on the GPU and, step for step, on the CPU with the GPU's bf16 roundings: every forward's
     * GPU logits must match the simulation's within {@link #SIMULATION_TOLERANCE} of their range.
     */
    private record Twin(String name, Gemma4Model gpu, Gemma4Model simulation) implements AutoCloseable {
        TextConfig config() {
            return gpu.config();
        }

        void startSequence(int id, int maxLength) {
            gpu.startSequence(id, maxLength);
            simulation.startSequence(id, maxLength);
        }

        void release(int id) {
            gpu.release(id);
            simulation.release(id);
        }

        float[] forward(ForwardBatch batch, int[] ids, int[] rows) {
            float[] ours = gpu.forward(batch, ids, rows);
            if (name.equals("tiny-moe")) {
                // No step-for-step comparison: the simulation reproduces the GPU's roundings, not its summation
                // orders, and this router's near ties turn order differences into other experts (0.16 to 0.49
                // of the range seen on the H200 across kernel versions). tiny-moe is held to transformers
                // (MOE_TOLERANCE) and the expert kernels to tight bounds in MoeGpuTest.
                return ours;
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
                assertTrue(ok, String.format("GPU vs CPU with bf16 roundings, row %d: max |diff| %.3g > %.3g",
                        r, d.worst(), tolerance * d.range()));
            }
            return ours;
        }

        @Override
        public void close() {
            gpu.close();
            simulation.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-31b", "tiny-moe"})
    void promptsAndTeacherForcedDecodeMatchTransformers(String name) {
        GoldenCheckpoint golden = GoldenCheckpoint.load(name);
        try (var model = open(golden); SafetensorsFile ref = golden.openReference()) {
            int vocab = model.config().vocabSize();
            for (var p : golden.prompts()) {
                int n = p.ids().length;
                model.startSequence(p.index(), n + golden.decodeLogitSteps() + 1);
                float[] logits = model.forward(ForwardBatch.of(new int[][] {{p.index(), 0, n}}), p.ids(),
                        IntStream.range(0, n).toArray());
                float[] prefill = golden.prefillLogits(ref, p);
                for (int t = 0; t < n; t++) {
                    check(golden.name(), Arrays.copyOfRange(prefill, t * vocab, (t + 1) * vocab),
                            Arrays.copyOfRange(logits, t * vocab, (t + 1) * vocab),
                            "prompt " + p.index() + " position " + t, t == n - 1 ? p.greedy()[0] : -1);
                }
                float[] decode = golden.decodeLogits(ref, p);
                for (int step = 0; step < golden.decodeLogitSteps(); step++) {
                    logits = model.forward(ForwardBatch.of(new int[][] {{p.index(), n + step, 1}}),
                            new int[] {p.greedy()[step]}, new int[] {0});
                    check(golden.name(), Arrays.copyOfRange(decode, step * vocab, (step + 1) * vocab), logits,
                            "prompt " + p.index() + " decode step " + (step + 1), p.greedy()[step + 1]);
                }
                model.release(p.index());
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-31b", "tiny-moe"})
    void batchedPrefillAndDecodeMatchTransformers(String name) {
        GoldenCheckpoint golden = GoldenCheckpoint.load(name);
        try (var model = open(golden); SafetensorsFile ref = golden.openReference()) {
            int vocab = model.config().vocabSize();
            List<GoldenCheckpoint.Prompt> prompts = golden.prompts();
            int[][] layout = new int[prompts.size()][];
            int total = prompts.stream().mapToInt(p -> p.ids().length).sum();
            int[] ids = new int[total];
            int[] lastRows = new int[prompts.size()];
            int row = 0;
            for (int i = 0; i < prompts.size(); i++) {
                int[] pid = prompts.get(i).ids();
                layout[i] = new int[] {100 + i, 0, pid.length};
                model.startSequence(100 + i, pid.length + golden.decodeLogitSteps() + 1);
                System.arraycopy(pid, 0, ids, row, pid.length);
                row += pid.length;
                lastRows[i] = row - 1;
            }
            float[] logits = model.forward(ForwardBatch.of(layout), ids, lastRows);
            for (int i = 0; i < prompts.size(); i++) {
                var p = prompts.get(i);
                int n = p.ids().length;
                check(golden.name(), Arrays.copyOfRange(golden.prefillLogits(ref, p), (n - 1) * vocab, n * vocab),
                        Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab), "batched prompt " + i, p.greedy()[0]);
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
                    check(golden.name(), Arrays.copyOfRange(golden.decodeLogits(ref, p), step * vocab, (step + 1) * vocab),
                            Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab),
                            "batched decode " + i + " step " + (step + 1), p.greedy()[step + 1]);
                }
            }
        }
    }

    /**
     * Logits within the bound; {@code greedy} (transformers' next token, or -1) must be our argmax where
     * the reference's margin is clear.
     */
    private static void check(String name, float[] expected, float[] actual, String what, int greedy) {
        assertEquals(expected.length, actual.length, what + ": logit count");
        var d = GoldenCheckpoint.LogitDeviation.of(expected, actual);
        double tolerance = name.equals("tiny-moe") ? MOE_TOLERANCE : TOLERANCE;
        double bound = tolerance * d.range();
        GpuReport.check("golden", name + " " + what, d.relative(), tolerance, d.within(tolerance));
        assertTrue(d.within(tolerance), String.format("%s: max |diff| %.3g at %d (ours %f, transformers %f) > %.3g",
                what, d.worst(), d.at(), actual[d.at()], expected[d.at()], bound));
        if (greedy >= 0) {
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
