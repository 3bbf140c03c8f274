package io.jemma.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.attention.ForwardBatch;
import io.jemma.backend.DType;
import io.jemma.backend.DummyWeights;
import io.jemma.backend.HostTensor;
import io.jemma.backend.Weight;
import io.jemma.backend.cpu.CpuBackend;
import io.jemma.model.config.TextConfig;
import io.jemma.model.config.WeightNames;
import io.jemma.model.weights.Checkpoint;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** --load-format dummy on the CPU: every tensor of the config from the shared generator, and the model runs. */
class DummyModelTest {

    @Test
    void dummyWeightsHaveTheConfigsShapesAndTheGeneratorsValues() throws Exception {
        GoldenCheckpoint golden = GoldenCheckpoint.load("tiny-31b");
        TextConfig config = TextConfig.load(golden.dir());
        List<String> names = new ArrayList<>();
        WeightSource dummy = WeightSource.dummy(config, 11);
        WeightSource recording = new ForwardingWeightSource(dummy) {
            @Override
            public Weight load(io.jemma.backend.Backend backend, String name, long... shape) {
                names.add(name);
                Weight w = dummy.load(backend, name, shape);
                assertEquals(DType.BF16, w.dtype());
                return w;
            }
        };
        KvBudget budget = new KvBudget(config, Float.BYTES);
        try (Gemma4Model model = new Gemma4Model(config, recording, new CpuBackend(),
                budget.forSequences(1, 16, 4, 16))) {
            // Every tensor the decoder reads (the real checkpoint's names), nothing else.
            List<String> expected = new ArrayList<>();
            try (Checkpoint real = Checkpoint.open(golden.dir())) {
                for (var t : WeightNames.expectedTensors(config)) {
                    if (real.find(t.name()).isPresent() && !t.name().endsWith("layer_scalar")) {
                        expected.add(t.name());
                    }
                }
            }
            assertEquals(expected.stream().sorted().toList(), names.stream().sorted().toList());
            model.startSequence(0, 8);
            float[] logits = model.forward(ForwardBatch.of(new int[][] {{0, 0, 3}}), new int[] {2, 17, 400},
                    new int[] {2});
            assertEquals(config.vocabSize(), logits.length);
            for (float l : logits) {
                assertTrue(Float.isFinite(l));
            }
        }
        HostTensor q = DummyWeights.host("model.language_model.layers.0.self_attn.q_proj.weight",
                new long[] {config.layer(0).qDim(), config.hiddenSize()}, DType.BF16, 11);
        assertEquals(DummyWeights.element(11, q.name(), q.shape(), 5, DType.BF16), q.getFloat(5));
    }
}
