package io.jemma.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.attention.ForwardBatch;
import io.jemma.attention.KvGeometry;
import io.jemma.engine.sampling.SampleResult;
import io.jemma.engine.sampling.SamplingBatch;
import io.jemma.model.Gemma4Model;
import io.jemma.model.GoldenCheckpoint;
import io.jemma.model.KvBudget;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import java.util.Arrays;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Decode steps replayed from CUDA graphs give the eager run's logits and tokens: the golden tiny-31b
 * model twice on the GPU (graphs on, graphs off), the same prompts prefilled, then decode steps at batch
 * sizes 1, 3 (padded to the bucket of 4), 5 and 6 (bucket 8), every step's logits compared. The first
 * step of a bucket runs eagerly and records; the later ones replay.
 */
@Tag("gpu")
class DecodeGraphGpuTest {
    /** Same kernels, same shapes up to padding rows: only cuBLASLt's algorithm for a padded row count may differ. */
    private static final double BOUND = 1e-3;

    private static Gemma4Model open(GoldenCheckpoint golden) {
        TextConfig config = TextConfig.load(golden.dir());
        KvGeometry kv = new KvBudget(config, 2).forSequences(8, 128, 16, 64);
        GpuTests.gpu();   // the availability check
        return new Gemma4Model(config, Checkpoint.open(golden.dir()), new CudaBackend(), kv);
    }

    @Test
    void replayedDecodeStepsMatchEagerOnes() {
        GoldenCheckpoint golden = GoldenCheckpoint.load("tiny-31b");
        try (Gemma4Model graphs = open(golden); Gemma4Model eager = open(golden)) {
            graphs.useGraphs(8);
            int vocab = graphs.config().vocabSize();
            int[] prompt = golden.prompts().get(1).ids();
            int sequences = 6;
            int[] length = new int[sequences];
            int[] next = new int[sequences];
            for (int s = 0; s < sequences; s++) {
                for (Gemma4Model m : new Gemma4Model[] {graphs, eager}) {
                    m.startSequence(s, 100);
                }
                int n = prompt.length - s;      // different lengths
                int[] ids = Arrays.copyOf(prompt, n);
                float[] a = graphs.forward(ForwardBatch.of(new int[][] {{s, 0, n}}), ids, new int[] {n - 1});
                float[] b = eager.forward(ForwardBatch.of(new int[][] {{s, 0, n}}), ids, new int[] {n - 1});
                var prefill = GoldenCheckpoint.LogitDeviation.of(b, a);
                assertTrue(prefill.within(1e-5), "prefill is eager in both: " + prefill);
                length[s] = n;
                next[s] = io.jemma.engine.sampling.Sampler.argmax(a, 0, vocab);
            }
            double worst = 0;
            int steps = 0;
            for (int batch : new int[] {1, 3, 3, 3, 5, 6, 6, 1, 1}) {
                int[][] layout = new int[batch][];
                int[] ids = new int[batch];
                for (int s = 0; s < batch; s++) {
                    layout[s] = new int[] {s, length[s], 1};
                    ids[s] = next[s];
                }
                int[] rows = IntStream.range(0, batch).toArray();
                // The graph path's logits (padded to the bucket: the first rows are ours), then the
                // device sampler on them, as forwardAndSample does.
                io.jemma.backend.Tensor t = graphs.logits(ForwardBatch.of(layout), ids, rows);
                float[] a = Arrays.copyOf(graphs.backend().toHost(t), batch * vocab);
                SampleResult ga = graphs.backend().sample(t, SamplingBatch.greedy(t.rows()));
                float[] b = eager.forward(ForwardBatch.of(layout), ids, rows);
                for (int s = 0; s < batch; s++) {
                    float[] ra = Arrays.copyOfRange(a, s * vocab, (s + 1) * vocab);
                    float[] rb = Arrays.copyOfRange(b, s * vocab, (s + 1) * vocab);
                    var d = GoldenCheckpoint.LogitDeviation.of(rb, ra);
                    worst = Math.max(worst, d.relative());
                    assertTrue(d.within(BOUND), "batch " + batch + " row " + s + ": " + d);
                    int best = io.jemma.engine.sampling.Sampler.argmax(rb, 0, vocab);
                    float second = Float.NEGATIVE_INFINITY;
                    for (int i = 0; i < vocab; i++) {
                        if (i != best) {
                            second = Math.max(second, rb[i]);
                        }
                    }
                    if (rb[best] - second > 2 * BOUND * d.range()) {
                        assertEquals(best, ga.token(s), "batch " + batch + " row " + s + ": the device-sampled greedy token");
                    }
                    next[s] = ga.token(s);
                    length[s]++;
                }
                steps++;
            }
            assertTrue(graphs.graphsEnabled(), "graphs stayed on");
            GpuReport.check("graphs", "tiny-31b decode, graph replay vs eager, " + steps
                    + " steps at batch 1-6 (max |diff| / range)", worst, BOUND, worst <= BOUND);
            for (int s = 0; s < sequences; s++) {
                graphs.release(s);
                eager.release(s);
            }
            assertEquals(0, graphs.kvCache().usedPages(), "pages left");
        }
    }

    /**
     * Graphs recorded at a short context are not replayed at a long one: the attention's split counts grow
     * with the context (AttentionBackend.graphKey), so a long-context step records its own graph. Alternates
     * a short and a 3000-token sequence at batch 1 and 2, every step's logits against the eager model's.
     */
    @Test
    void longContextStepsRecordTheirOwnGraphs() {
        GoldenCheckpoint golden = GoldenCheckpoint.load("tiny-31b");
        java.util.function.Supplier<Gemma4Model> open = () -> {
            TextConfig config = TextConfig.load(golden.dir());
            KvGeometry kv = new KvBudget(config, 2).forSequences(4, 4096, 16, 512);
            GpuTests.gpu();
            return new Gemma4Model(config, Checkpoint.open(golden.dir()), new CudaBackend(), kv);
        };
        try (Gemma4Model graphs = open.get(); Gemma4Model eager = open.get()) {
            graphs.useGraphs(4);
            int vocab = graphs.config().vocabSize();
            java.util.SplittableRandom r = GpuTests.random("long-context graphs");
            int[][] prompts = {golden.prompts().get(0).ids(), r.ints(3000, 3, vocab).toArray()};
            int[] length = new int[2];
            int[] next = new int[2];
            for (int s = 0; s < 2; s++) {
                int[] p = prompts[s];
                for (Gemma4Model m : new Gemma4Model[] {graphs, eager}) {
                    assertTrue(m.kvCache().reserve(s, p.length + 16, 512), "KV for sequence " + s);   // 512-token chunks
                }
                float[] last = null;
                for (int at = 0; at < p.length; at += 512) {
                    int n = Math.min(512, p.length - at);
                    int[] ids = Arrays.copyOfRange(p, at, at + n);
                    int[][] layout = {{s, at, n}};
                    last = eager.forward(ForwardBatch.of(layout), ids, new int[] {n - 1});
                    graphs.forward(ForwardBatch.of(layout), ids, new int[] {n - 1});
                }
                length[s] = p.length;
                next[s] = io.jemma.engine.sampling.Sampler.argmax(last, 0, vocab);
            }
            double worst = 0;
            int[][] plan = {{0}, {0, 1}, {1}, {1}, {0}, {0, 1}, {1}};
            for (int[] seqs : plan) {
                int[][] layout = new int[seqs.length][];
                int[] ids = new int[seqs.length];
                for (int i = 0; i < seqs.length; i++) {
                    layout[i] = new int[] {seqs[i], length[seqs[i]], 1};
                    ids[i] = next[seqs[i]];
                }
                int[] rows = IntStream.range(0, seqs.length).toArray();
                float[] a = Arrays.copyOf(graphs.backend().toHost(graphs.logits(ForwardBatch.of(layout), ids, rows)),
                        seqs.length * vocab);
                float[] b = eager.forward(ForwardBatch.of(layout), ids, rows);
                for (int i = 0; i < seqs.length; i++) {
                    var d = GoldenCheckpoint.LogitDeviation.of(Arrays.copyOfRange(b, i * vocab, (i + 1) * vocab),
                            Arrays.copyOfRange(a, i * vocab, (i + 1) * vocab));
                    worst = Math.max(worst, d.relative());
                    assertTrue(d.within(BOUND), "sequence " + seqs[i] + " at " + length[seqs[i]] + ": " + d);
                    next[seqs[i]] = io.jemma.engine.sampling.Sampler.argmax(b, i * vocab, vocab);
                    length[seqs[i]]++;
                }
            }
            assertTrue(graphs.graphsEnabled(), "graphs stayed on");
            GpuReport.check("graphs", "tiny-31b decode at 3000 positions, " + graphs.attention().name()
                    + ", graph replay vs eager (max |diff| / range)", worst, BOUND, worst <= BOUND);
        }
    }
}
