package io.jemma.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jemma.attention.ForwardBatch;
import io.jemma.engine.sampling.Sampler;
import io.jemma.model.config.AssistantConfig;
import io.jemma.model.config.ConfigException;
import io.jemma.model.weights.Checkpoint;
import io.jemma.model.weights.SafetensorsFile;
import io.jemma.speculative.DraftTree;
import io.jemma.speculative.Drafter;
import io.jemma.speculative.SpeculativeLimits;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The assistant (MTP drafter) on the CPU against what transformers computed for the golden assistants
 * (tools/reference/make_golden.py): for each case the target is prefilled up to the bonus token t, then three
 * chained draft steps run from the target's hidden state at t - 1; their logits (the centroid-masked head for
 * the e4b one) and projected states must match, and so must the drafted tokens.
 */
class GoldenAssistantTest {

    private static final double TOLERANCE = 1e-3;

    record Case(int prompt, int t, int[] ids, int bonus, int[] drafted, String name) {
    }

    private static List<Case> cases(Path assistantDir) throws IOException {
        JsonNode ref = new ObjectMapper().readTree(Files.readString(assistantDir.resolve("reference.json")));
        List<Case> out = new ArrayList<>();
        for (JsonNode c : ref.get("cases")) {
            out.add(new Case(c.get("prompt").asInt(), c.get("t").asInt(), ints(c.get("ids")), c.get("bonus_token").asInt(),
                    ints(c.get("drafted")), c.get("name").asText()));
        }
        for (JsonNode g : ref.get("assisted_generate")) {
            assertTrue(g.path("equals_greedy").asBoolean(false), "transformers' assisted generate must equal greedy: " + g);
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-31b-assistant", "tiny-e4b-assistant"})
    void draftStepsMatchTransformers(String name) throws IOException {
        Path dir = GoldenCheckpoint.root().resolve(name);
        String targetName = new ObjectMapper().readTree(Files.readString(dir.resolve("reference.json"))).get("target").asText();
        try (Gemma4Model target = GoldenModelTest.open(GoldenCheckpoint.load(targetName));
             Gemma4Assistant assistant = new Gemma4Assistant(AssistantConfig.load(dir), Checkpoint.open(dir), target);
             SafetensorsFile ref = SafetensorsFile.open(dir.resolve("reference.safetensors"))) {
            int vocab = target.config().vocabSize();
            int backbone = target.config().hiddenSize();
            List<Case> cases = cases(dir);
            int seq = 0;
            float[][] firstHidden = new float[cases.size()][];
            for (Case c : cases) {
                float[] h = prefill(target, seq, c);
                firstHidden[seq] = h;
                assertClose(floats(ref, c.name() + ".hidden"), h, name + " " + c.name() + " target hidden at t - 1");
                float[] expectedLogits = floats(ref, c.name() + ".logits");
                float[] expectedProjected = floats(ref, c.name() + ".projected");
                int token = c.bonus();
                for (int step = 0; step < c.drafted().length; step++) {
                    Gemma4Assistant.Step out = assistant.draft(new int[] {seq}, new int[] {c.t()}, new int[] {token}, h);
                    String what = name + " " + c.name() + " step " + step;
                    assertClose(Arrays.copyOfRange(expectedLogits, step * vocab, (step + 1) * vocab), out.logits(),
                            what + " logits");
                    assertClose(Arrays.copyOfRange(expectedProjected, step * backbone, (step + 1) * backbone),
                            out.projected(), what + " projected state");
                    assertEquals(c.drafted()[step], Sampler.argmax(out.logits(), 0, vocab), what + " drafted token");
                    token = c.drafted()[step];
                    h = out.projected(0);
                }
                seq++;
            }
            // All first steps in one call: sequences of different lengths, each reading its own KV.
            int n = cases.size();
            int[] ids = new int[n];
            int[] lengths = new int[n];
            int[] tokens = new int[n];
            float[] hidden = new float[n * backbone];
            for (int i = 0; i < n; i++) {
                ids[i] = i;
                lengths[i] = cases.get(i).t();
                tokens[i] = cases.get(i).bonus();
                System.arraycopy(firstHidden[i], 0, hidden, i * backbone, backbone);
            }
            Gemma4Assistant.Step batched = assistant.draft(ids, lengths, tokens, hidden);
            for (int i = 0; i < n; i++) {
                float[] expected = Arrays.copyOfRange(floats(ref, cases.get(i).name() + ".logits"), 0, vocab);
                assertClose(expected, Arrays.copyOfRange(batched.logits(), i * vocab, (i + 1) * vocab),
                        name + " batched query " + i);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-31b-assistant", "tiny-e4b-assistant"})
    void theDrafterChainsTransformersTokensAndGrowsWellFormedTrees(String name) throws IOException {
        Path dir = GoldenCheckpoint.root().resolve(name);
        String targetName = new ObjectMapper().readTree(Files.readString(dir.resolve("reference.json"))).get("target").asText();
        try (Gemma4Model target = GoldenModelTest.open(GoldenCheckpoint.load(targetName));
             Gemma4Assistant assistant = new Gemma4Assistant(AssistantConfig.load(dir), Checkpoint.open(dir), target)) {
            List<Case> cases = cases(dir);
            List<Drafter.Request> chains = new ArrayList<>();
            List<Drafter.Request> trees = new ArrayList<>();
            for (int i = 0; i < cases.size(); i++) {
                Case c = cases.get(i);
                float[] h = prefill(target, i, c);
                chains.add(new Drafter.Request(i, c.t(), c.bonus(), h, 3, false, null));
                trees.add(new Drafter.Request(i, c.t(), c.bonus(), h, 3, true, null));
            }
            // Chains, all sequences in one batch per step: transformers' argmax tokens.
            List<DraftTree> drafted = new Drafter(assistant, SpeculativeLimits.chain(3)).draft(chains);
            for (int i = 0; i < cases.size(); i++) {
                DraftTree d = drafted.get(i);
                assertTrue(d.isChain());
                assertEquals(cases.get(i).bonus(), d.token(0));
                assertArrayEquals(cases.get(i).drafted(), Arrays.copyOfRange(d.tokens(), 1, 4), name + " case " + i);
            }
            // Trees of topk 2: parents first, at most 6 drafted nodes, 3 deep, distinct siblings; the root's first
            // child is the assistant's most likely first token.
            var limits = new SpeculativeLimits(3, 2, 7);
            List<DraftTree> grown = new Drafter(assistant, limits).draft(trees);
            for (int i = 0; i < cases.size(); i++) {
                DraftTree d = grown.get(i);
                assertEquals(7, d.size(), d.toString());
                assertEquals(cases.get(i).drafted()[0], d.token(d.children(0)[0]), d.toString());
                assertTrue(d.maxDepth() >= 2 && d.maxDepth() <= 3, d.toString());
                for (int node = 0; node < d.size(); node++) {
                    int[] children = d.children(node);
                    assertTrue(children.length <= 2, d.toString());
                    assertTrue(children.length < 2 || d.token(children[0]) != d.token(children[1]), d.toString());
                }
                d.mask(); // a valid TreeMask (parents before children)
            }
        }
    }

    /** Prefills positions [0, t) and returns the target's final-normed hidden state at t - 1. */
    private static float[] prefill(Gemma4Model target, int seq, Case c) {
        int[] prefix = Arrays.copyOf(c.ids(), c.t());
        target.startSequence(seq, c.t() + 1);
        target.forward(ForwardBatch.of(new int[][] {{seq, 0, c.t()}}), prefix, new int[] {c.t() - 1});
        return target.lastHiddenStates();
    }

    @Test
    void anAssistantForAnotherTargetIsAStartupError() {
        Path e4bAssistant = GoldenCheckpoint.root().resolve("tiny-e4b-assistant");
        try (Gemma4Model target = GoldenModelTest.open(GoldenCheckpoint.load("tiny-31b"))) {
            // Same widths and vocabulary, but its sliding layers expect 1 KV head where tiny-31b has 2.
            ConfigException e = assertThrows(ConfigException.class,
                    () -> new Gemma4Assistant(AssistantConfig.load(e4bAssistant), Checkpoint.open(e4bAssistant), target));
            assertTrue(e.getMessage().contains("KV heads") && e.getMessage().contains("target layer 4"), e.getMessage());
        }
    }

    private static float[] floats(SafetensorsFile ref, String name) {
        return ref.tensor(name).toFloatArray();
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        var d = GoldenCheckpoint.LogitDeviation.of(expected, actual);
        assertTrue(d.within(TOLERANCE), String.format("%s: max |diff| %.3g at %d (ours %f, transformers %f) > %.3g",
                what, d.worst(), d.at(), actual[d.at()], expected[d.at()], TOLERANCE * d.range()));
    }
}
