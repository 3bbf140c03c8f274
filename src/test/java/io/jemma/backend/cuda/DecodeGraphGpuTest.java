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

    /**
     * Speculative decoding's steps replayed from graphs give the eager run's results: the golden tiny-31b with its
     * golden assistant twice on the GPU (graphs on with verify chunks of 4, graphs off). At batch sizes 1, 3
     * (bucket 4) and 5 (bucket 8), repeatedly: one assistant draft step (logits and projected state of every
     * query), a greedy chain of 3 drafts on the device against the eager model's step-by-step host argmax (where
     * that is not a near tie), and a verify forward of 4 tokens per sequence (every row's logits, and the hidden
     * states the next drafts start from); then each sequence keeps 1 + (s % 4) of the 4 verify positions.
     */
    @Test
    void replayedVerifyAndDraftStepsMatchEagerOnes() throws Exception {
        GoldenCheckpoint golden = GoldenCheckpoint.load("tiny-31b");
        java.nio.file.Path assistantDir = java.nio.file.Path.of(
                DecodeGraphGpuTest.class.getResource("/golden/tiny-31b-assistant").toURI());
        int verify = 4;
        try (Gemma4Model graphs = open(golden); Gemma4Model eager = open(golden);
             io.jemma.model.Gemma4Assistant ga = assistant(assistantDir, graphs);
             io.jemma.model.Gemma4Assistant ea = assistant(assistantDir, eager)) {
            for (Gemma4Model m : new Gemma4Model[] {graphs, eager}) {
                m.kvCache().retainBehindWindow(verify + io.jemma.model.Gemma4Assistant.RETAINED_BEHIND_WINDOW - 1);
            }
            graphs.useGraphs(8, verify);
            int vocab = graphs.config().vocabSize();
            int backbone = graphs.config().hiddenSize();
            java.util.SplittableRandom r = GpuTests.random("speculative graphs");
            int sequences = 5;
            int[] length = new int[sequences];
            float[][] hidden = new float[sequences][];
            int[] last = new int[sequences];
            for (int s = 0; s < sequences; s++) {
                int[] prompt = golden.prompts().get(s % golden.prompts().size()).ids();
                int n = prompt.length - s;
                for (Gemma4Model m : new Gemma4Model[] {graphs, eager}) {
                    m.startSequence(s, 100);
                }
                int[][] layout = {{s, 0, n}};
                graphs.forward(ForwardBatch.of(layout), Arrays.copyOf(prompt, n), new int[] {n - 1});
                float[] b = eager.forward(ForwardBatch.of(layout), Arrays.copyOf(prompt, n), new int[] {n - 1});
                hidden[s] = eager.lastHiddenStates();
                length[s] = n;
                last[s] = io.jemma.engine.sampling.Sampler.argmax(b, 0, vocab);
            }
            double worst = 0;
            int chainTokens = 0;
            int chainChecked = 0;
            int rounds = 0;
            for (int batch : new int[] {1, 3, 3, 5, 5, 1, 3}) {
                int[] seqs = IntStream.range(0, batch).toArray();
                int[] lengths = new int[batch];
                int[] tokens = new int[batch];
                float[] h = new float[batch * backbone];
                for (int s = 0; s < batch; s++) {
                    lengths[s] = length[s];
                    tokens[s] = last[s];
                    System.arraycopy(hidden[s], 0, h, s * backbone, backbone);
                }
                // One draft step, graph vs eager.
                var sa = ga.draft(seqs, lengths, tokens, h);
                var sb = ea.draft(seqs, lengths, tokens, h);
                for (int s = 0; s < batch; s++) {
                    var d = GoldenCheckpoint.LogitDeviation.of(Arrays.copyOfRange(sb.logits(), s * vocab, (s + 1) * vocab),
                            Arrays.copyOfRange(sa.logits(), s * vocab, (s + 1) * vocab));
                    worst = Math.max(worst, d.relative());
                    assertTrue(d.within(BOUND), "draft step, batch " + batch + " query " + s + ": " + d);
                    var p = GoldenCheckpoint.LogitDeviation.of(sb.projected(s), sa.projected(s));
                    worst = Math.max(worst, p.relative());
                    assertTrue(p.within(BOUND), "projected state, batch " + batch + " query " + s + ": " + p);
                }
                // A greedy chain of 3 on the device (graphs, projected state kept there) vs the host's argmax.
                int[][] chains = ga.draftGreedyChains(seqs, lengths, tokens, h, 3);
                for (int s = 0; s < batch; s++) {
                    int token = tokens[s];
                    float[] hs = hidden[s];
                    for (int step = 0; step < 3; step++) {
                        var one = ea.draft(new int[] {s}, new int[] {length[s]}, new int[] {token}, hs);
                        float[] l = Arrays.copyOf(one.logits(), vocab);
                        int best = io.jemma.engine.sampling.Sampler.argmax(l, 0, vocab);
                        chainTokens++;
                        if (margin(l, best) <= 2 * BOUND * range(l)) {
                            break;   // a near tie: the rest of the chain may legitimately differ
                        }
                        assertEquals(best, chains[s][step], "chain of query " + s + " at batch " + batch + ", step "
                                + step);
                        chainChecked++;
                        token = best;
                        hs = one.projected(0);
                    }
                }
                // A verify of 4 tokens per sequence: the root and 3 random drafts.
                int[][] layout = new int[batch][];
                int[] ids = new int[batch * verify];
                for (int s = 0; s < batch; s++) {
                    layout[s] = new int[] {s, length[s], verify};
                    ids[s * verify] = last[s];
                    for (int j = 1; j < verify; j++) {
                        ids[s * verify + j] = r.nextInt(3, vocab);
                    }
                }
                int[] rows = IntStream.range(0, batch * verify).toArray();
                io.jemma.backend.Tensor t = graphs.logits(ForwardBatch.of(layout), ids, rows);
                float[] a = Arrays.copyOf(graphs.backend().toHost(t), rows.length * vocab);
                float[] ha = graphs.hiddenRows(rows);
                float[] b = eager.forward(ForwardBatch.of(layout), ids, rows);
                float[] hb = eager.lastHiddenStates();
                for (int row = 0; row < rows.length; row++) {
                    var d = GoldenCheckpoint.LogitDeviation.of(Arrays.copyOfRange(b, row * vocab, (row + 1) * vocab),
                            Arrays.copyOfRange(a, row * vocab, (row + 1) * vocab));
                    worst = Math.max(worst, d.relative());
                    assertTrue(d.within(BOUND), "verify, batch " + batch + " row " + row + ": " + d);
                    var hd = GoldenCheckpoint.LogitDeviation.of(
                            Arrays.copyOfRange(hb, row * backbone, (row + 1) * backbone),
                            Arrays.copyOfRange(ha, row * backbone, (row + 1) * backbone));
                    worst = Math.max(worst, hd.relative());
                    assertTrue(hd.within(BOUND), "verify hidden state, batch " + batch + " row " + row + ": " + hd);
                }
                for (int s = 0; s < batch; s++) {
                    int keep = 1 + (s + rounds) % verify;
                    int row = s * verify + keep - 1;
                    hidden[s] = Arrays.copyOfRange(hb, row * backbone, (row + 1) * backbone);
                    last[s] = io.jemma.engine.sampling.Sampler.argmax(b, row * vocab, vocab);
                    length[s] += keep;
                    graphs.kvCache().truncate(s, length[s]);
                    eager.kvCache().truncate(s, length[s]);
                }
                rounds++;
            }
            assertTrue(graphs.graphsEnabled(), "graphs stayed on");
            assertTrue(ga.draftGraphs() > 0, "the assistant recorded its draft steps");
            assertEquals(0, ea.draftGraphs(), "no draft graphs without the target's");
            assertTrue(chainChecked >= chainTokens / 2, "chain tokens checked: " + chainChecked + " of " + chainTokens);
            GpuReport.check("graphs", "tiny-31b speculative steps (draft, 3-step device chain: " + chainChecked + "/"
                    + chainTokens + " tokens checked, verify of 4) at batch 1-5, graph replay vs eager (max |diff|"
                    + " / range)", worst, BOUND, worst <= BOUND);
            for (int s = 0; s < sequences; s++) {
                graphs.release(s);
                eager.release(s);
            }
        }
    }

    private static io.jemma.model.Gemma4Assistant assistant(java.nio.file.Path dir, Gemma4Model target) {
        return new io.jemma.model.Gemma4Assistant(io.jemma.model.config.AssistantConfig.load(dir),
                Checkpoint.open(dir), target);
    }

    private static float margin(float[] l, int best) {
        float second = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < l.length; i++) {
            if (i != best) {
                second = Math.max(second, l[i]);
            }
        }
        return l[best] - second;
    }

    private static float range(float[] l) {
        float min = Float.POSITIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        for (float v : l) {
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        return max - min;
    }
}
