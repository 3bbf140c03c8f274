package io.jemma.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.attention.ForwardBatch;
import io.jemma.backend.Weight;
import io.jemma.backend.cpu.CpuBackend;
import io.jemma.model.config.AssistantConfig;
import io.jemma.model.config.TextConfig;
import io.jemma.model.weights.Checkpoint;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * An assistant from dummy weights (what the speculative benchmark loads at the 31B assistant's shapes): the
 * loader asks the source for exactly the tensors of the real (tiny) assistant checkpoint, at its shapes, and the
 * dummy assistant drafts finite logits and projected states beside a dummy target.
 */
class DummyAssistantTest {

    @Test
    void aDummyAssistantLoadsTheCheckpointsTensorsAndDrafts() throws Exception {
        GoldenCheckpoint golden = GoldenCheckpoint.load("tiny-31b");
        Path assistantDir = Path.of(DummyAssistantTest.class.getResource("/golden/tiny-31b-assistant").toURI());
        TextConfig config = TextConfig.load(golden.dir());
        AssistantConfig assistantConfig = AssistantConfig.load(assistantDir);
        WeightSource dummy = WeightSource.dummy(assistantConfig.decoder(), 12);
        List<String> names = new ArrayList<>();
        List<String> wrong = new ArrayList<>();
        try (Checkpoint real = Checkpoint.open(assistantDir)) {
            WeightSource recording = new ForwardingWeightSource(dummy) {
                @Override
                public Weight load(io.jemma.backend.Backend backend, String name, long... shape) {
                    names.add(name);
                    var t = real.find(name);
                    if (t.isEmpty() || !java.util.Arrays.equals(t.get().shape(), shape)) {
                        wrong.add(name + " " + java.util.Arrays.toString(shape));
                    }
                    return dummy.load(backend, name, shape);
                }
            };
            KvBudget budget = new KvBudget(config, Float.BYTES);
            try (Gemma4Model model = new Gemma4Model(config, WeightSource.dummy(config, 11), new CpuBackend(),
                    budget.forSequences(1, 32, 4, 16));
                 Gemma4Assistant assistant = new Gemma4Assistant(assistantConfig, recording, model)) {
                assertTrue(wrong.isEmpty(), "tensors not in the real assistant checkpoint at these shapes: " + wrong);
                assertTrue(names.size() > 5, "the assistant loaded " + names);
                model.startSequence(0, 16);
                model.forward(ForwardBatch.of(new int[][] {{0, 0, 5}}), new int[] {2, 17, 400, 9, 33}, new int[] {4});
                float[] hidden = model.lastHiddenStates();
                int backbone = assistantConfig.backboneHiddenSize();
                assertEquals(backbone, hidden.length);
                Gemma4Assistant.Step step = assistant.draft(new int[] {0, 0}, new int[] {5, 5}, new int[] {81, 82},
                        concat(hidden, hidden));
                assertEquals(2 * assistantConfig.decoder().vocabSize(), step.logits().length);
                for (float l : step.logits()) {
                    assertTrue(Float.isFinite(l));
                }
                for (float h : step.projected(1)) {
                    assertTrue(Float.isFinite(h));
                }
            }
        }
    }

    private static float[] concat(float[] a, float[] b) {
        float[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
