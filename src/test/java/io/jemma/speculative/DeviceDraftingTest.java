package io.jemma.speculative;

import io.jemma.attention.ForwardBatch;
import io.jemma.backend.cpu.CpuBackend;
import io.jemma.engine.sampling.Sampler;
import io.jemma.engine.sampling.SamplingParams;
import io.jemma.engine.sampling.SpeculativeSampling;
import io.jemma.model.Gemma4Assistant;
import io.jemma.model.Gemma4Model;
import io.jemma.model.KvBudget;
import io.jemma.model.config.AssistantConfig;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Which logits drafting brings to the host, on the golden tiny-31b and its assistant through a backend that
 * records the model code's host copies: a greedy chain's tokens are picked by the backend ({@code sample}) and
 * its logits stay where they are, with the same tokens as the host's argmax; a sampled chain still brings its
 * row (the draft distribution speculative sampling needs), and its drafts, verified against the target, come out
 * distributed as the target (chi-square at p = 0.001, as in {@code SpeculativeSamplingTest}).
 */
class DeviceDraftingTest {

    private static final int PROMPT = 12;
    private static final int SEQUENCES = 3;

    private static HostCopyRecordingBackend backend;
    private static Gemma4Model target;
    private static Gemma4Assistant assistant;
    private static int vocab;
    private static float[][] hidden;       // per sequence: the target's hidden state at PROMPT - 1
    private static int[][] prompts;        // per sequence: PROMPT tokens, then its root token

    @BeforeAll
    static void open() throws URISyntaxException {
        Path targetDir = Path.of(DeviceDraftingTest.class.getResource("/golden/tiny-31b").toURI());
        Path assistantDir = Path.of(DeviceDraftingTest.class.getResource("/golden/tiny-31b-assistant").toURI());
        TextConfig config = TextConfig.load(targetDir);
        backend = new HostCopyRecordingBackend(new CpuBackend());
        target = new Gemma4Model(config, Checkpoint.open(targetDir), backend,
                new KvBudget(config, Float.BYTES).forSequences(2 * SEQUENCES, 64, 4, 32));
        assistant = new Gemma4Assistant(AssistantConfig.load(assistantDir), Checkpoint.open(assistantDir), target);
        vocab = config.vocabSize();
        Random random = new Random(6);
        hidden = new float[SEQUENCES][];
        prompts = new int[SEQUENCES][];
        for (int s = 0; s < SEQUENCES; s++) {
            prompts[s] = random.ints(PROMPT + 1, 2, vocab).toArray();
            target.startSequence(s, 64);
            target.forward(ForwardBatch.of(new int[][] {{s, 0, PROMPT}}), Arrays.copyOf(prompts[s], PROMPT),
                    new int[] {PROMPT - 1});
            hidden[s] = target.lastHiddenStates();
        }
    }

    @AfterAll
    static void close() {
        assistant.close();
        target.close();
    }

    private static Drafter.Request request(int s, int depth, Sampler sampler) {
        return new Drafter.Request(s, PROMPT, prompts[s][PROMPT], hidden[s], depth, false, sampler);
    }

    @Test
    void aGreedyChainRoundCopiesNoLogitsToTheHostAndDraftsTheHostsArgmax() {
        backend.clear();
        List<DraftTree> drafts = new Drafter(assistant, SpeculativeLimits.chain(3))
                .draft(List.of(request(0, 3, null), request(1, 3, null), request(2, 2, null)));
        assertEquals(List.of(), backend.copiesOfWidth(vocab).stream().map(Arrays::toString).toList(),
                "vocabulary-wide host copies of a greedy round");
        assertEquals(List.of(3, 3, 3), backend.sampled, "one greedy sample per step over every query (the chains are"
                + " drafted together for the longest depth, each cut to its own)");
        // The tokens the host path picks: each query alone, its logits on the host, their argmax.
        for (int s = 0; s < SEQUENCES; s++) {
            int depth = s == 2 ? 2 : 3;
            int[] expected = new int[depth + 1];
            expected[0] = prompts[s][PROMPT];
            float[] h = hidden[s];
            for (int step = 0; step < depth; step++) {
                Gemma4Assistant.Step out = assistant.draft(new int[] {s}, new int[] {PROMPT},
                        new int[] {expected[step]}, h);
                expected[step + 1] = Sampler.argmax(out.logits(), out.logitOffset(0), vocab);
                h = out.projected(0);
            }
            assertArrayEquals(expected, drafts.get(s).tokens(), "sequence " + s);
        }
    }

    @Test
    void aSampledChainBesideGreedyOnesBringsOnlyItsOwnRow() {
        backend.clear();
        Sampler sampler = new Sampler(new SamplingParams(1.0, 0, 1.0, 0, 7));
        List<DraftTree> drafts = new Drafter(assistant, SpeculativeLimits.chain(3))
                .draft(List.of(request(0, 3, null), request(1, 3, sampler), request(2, 3, null)));
        List<int[]> copies = backend.copiesOfWidth(vocab);
        assertEquals(3, copies.size(), "one host copy per step");
        for (int[] shape : copies) {
            assertArrayEquals(new int[] {1, vocab}, shape, "only the sampled query's row");
        }
        // Its first draft distribution is the sampler's over the assistant's logits of that query.
        Gemma4Assistant.Step alone = assistant.draft(new int[] {1}, new int[] {PROMPT},
                new int[] {prompts[1][PROMPT]}, hidden[1]);
        assertArrayEquals(new Sampler(sampler.params()).distribution(alone.logits(), 0, vocab),
                drafts.get(1).distribution(1));
        assertTrue(drafts.get(1).distribution(1)[drafts.get(1).token(1)] > 0);
    }

    @Test
    void sampledDraftsVerifiedAgainstTheTargetComeOutDistributedAsTheTarget() {
        // The target's distribution after the root: sequence SEQUENCES + 1 holds the prompt and the root.
        SamplingParams params = new SamplingParams(1.0, 4, 1.0, 0.0, 11);
        int s = 1;
        int other = SEQUENCES + 1;
        target.startSequence(other, 64);
        float[] targetLogits = target.forward(ForwardBatch.of(new int[][] {{other, 0, PROMPT + 1}}), prompts[s],
                new int[] {PROMPT});
        float[] p = new Sampler(params).distribution(targetLogits, 0, vocab);
        Sampler sampler = new Sampler(params);
        Drafter drafter = new Drafter(assistant, SpeculativeLimits.chain(3));
        int trials = 4_000;
        int[] verified = new int[vocab];
        int[] kept = new int[vocab];
        float[] q = null;
        for (int i = 0; i < trials; i++) {
            // Beside a greedy chain, so the sampled row's logits come from the gathered rows.
            DraftTree d = drafter.draft(List.of(request(0, 1, null), request(s, 1, sampler))).get(1);
            q = d.distribution(1);
            kept[d.token(1)]++;
            verified[SpeculativeSampling.sampled(p, q, d.token(1), sampler).token()]++;
        }
        double bound = 16.27;  // chi-square at p = 0.001, 3 degrees of freedom (top-k 4: four cells)
        assertEquals(4, Arrays.stream(toDoubles(p)).filter(x -> x > 0).count());
        double chi2 = chiSquare(p, verified, trials);
        assertTrue(chi2 < bound, "chi-square " + chi2 + " >= " + bound + " " + Arrays.toString(nonZero(verified)));
        assertTrue(chiSquare(p, kept, trials) > 50 * bound, "the drafts alone are not the target's: "
                + Arrays.toString(nonZero(kept)) + " q support " + Arrays.toString(nonZero(q)));
    }

    private static double chiSquare(float[] p, int[] counts, int trials) {
        double total = 0;
        for (float x : p) {
            total += x;
        }
        double chi2 = 0;
        for (int i = 0; i < p.length; i++) {
            double expected = trials * p[i] / total;
            if (expected == 0) {
                if (counts[i] > 0) {
                    return Double.POSITIVE_INFINITY;
                }
                continue;
            }
            chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
        }
        return chi2;
    }

    private static double[] toDoubles(float[] p) {
        double[] out = new double[p.length];
        for (int i = 0; i < p.length; i++) {
            out[i] = p[i];
        }
        return out;
    }

    private static String[] nonZero(int[] counts) {
        return java.util.stream.IntStream.range(0, counts.length).filter(i -> counts[i] > 0)
                .mapToObj(i -> i + ":" + counts[i]).toArray(String[]::new);
    }

    private static String[] nonZero(float[] p) {
        return java.util.stream.IntStream.range(0, p.length).filter(i -> p[i] > 0)
                .mapToObj(i -> i + ":" + p[i]).toArray(String[]::new);
    }
}
