package io.jemma.model.config;

import io.jemma.backend.DType;
import io.jemma.model.weights.Checkpoint;
import io.jemma.model.weights.CheckpointException;
import io.jemma.model.weights.SafetensorsWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WeightNamesTest {

    @TempDir
    Path dir;

    @Test
    void namesFollowTransformersModules() {
        WeightNames n = new WeightNames("model.language_model.");
        assertEquals("model.language_model.embed_tokens.weight", n.embedTokens());
        assertEquals("model.language_model.norm.weight", n.finalNorm());
        assertEquals("model.language_model.embed_tokens_per_layer.weight", n.embedTokensPerLayer());
        assertEquals("model.language_model.per_layer_model_projection.weight", n.perLayerModelProjection());
        assertEquals("model.language_model.per_layer_projection_norm.weight", n.perLayerProjectionNorm());
        assertEquals("lm_head.weight", n.lmHead());
        String l = "model.language_model.layers.7.";
        assertEquals(l + "self_attn.q_proj.weight", n.qProj(7));
        assertEquals(l + "self_attn.k_proj.weight", n.kProj(7));
        assertEquals(l + "self_attn.v_proj.weight", n.vProj(7));
        assertEquals(l + "self_attn.o_proj.weight", n.oProj(7));
        assertEquals(l + "self_attn.q_norm.weight", n.qNorm(7));
        assertEquals(l + "self_attn.k_norm.weight", n.kNorm(7));
        assertEquals(l + "input_layernorm.weight", n.inputLayernorm(7));
        assertEquals(l + "post_attention_layernorm.weight", n.postAttentionLayernorm(7));
        assertEquals(l + "pre_feedforward_layernorm.weight", n.preFeedforwardLayernorm(7));
        assertEquals(l + "post_feedforward_layernorm.weight", n.postFeedforwardLayernorm(7));
        assertEquals(l + "mlp.gate_proj.weight", n.gateProj(7));
        assertEquals(l + "mlp.up_proj.weight", n.upProj(7));
        assertEquals(l + "mlp.down_proj.weight", n.downProj(7));
        assertEquals(l + "layer_scalar", n.layerScalar(7));
        assertEquals(l + "per_layer_input_gate.weight", n.perLayerInputGate(7));
        assertEquals(l + "per_layer_projection.weight", n.perLayerProjection(7));
        assertEquals(l + "post_per_layer_input_norm.weight", n.postPerLayerInputNorm(7));
        assertEquals(l + "router.proj.weight", n.routerProj(7));
        assertEquals(l + "router.scale", n.routerScale(7));
        assertEquals(l + "router.per_expert_scale", n.routerPerExpertScale(7));
        assertEquals(l + "experts.gate_up_proj", n.expertsGateUpProj(7));
        assertEquals(l + "experts.down_proj", n.expertsDownProj(7));
        assertEquals(l + "pre_feedforward_layernorm_2.weight", n.preFeedforwardLayernorm2(7));
        assertEquals(l + "post_feedforward_layernorm_1.weight", n.postFeedforwardLayernorm1(7));
        assertEquals(l + "post_feedforward_layernorm_2.weight", n.postFeedforwardLayernorm2(7));
        assertEquals("model.layers.0.layer_scalar", new WeightNames("model.").layerScalar(0));
    }

    private static TextConfig tiny(String extra) {
        return TextConfig.parse("""
                {"model_type": "gemma4_text", "vocab_size": 32, "hidden_size": 16, "intermediate_size": 24,
                 "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
                 "global_head_dim": 16, "sliding_window": 4, "vocab_size_per_layer_input": 32,
                 "hidden_size_per_layer_input": 4 %s}""".formatted(extra), null);
    }

    /** Dummy weights at the shapes the config implies open and check against those shapes. */
    private void roundTrip(TextConfig config) {
        List<ExpectedTensor> expected = WeightNames.expectedTensors(config);
        SafetensorsWriter w = new SafetensorsWriter();
        int i = 0;
        for (ExpectedTensor t : expected) {
            DType dtype = DType.values()[i++ % 3];
            float[] values = new float[(int) t.numel()];
            java.util.Arrays.fill(values, i);
            w.add(t.name(), dtype, t.shape(), values);
        }
        w.write(dir.resolve(Checkpoint.SINGLE_FILE));
        try (Checkpoint c = Checkpoint.open(dir)) {
            assertEquals(expected.size(), c.names().size());
            for (ExpectedTensor t : expected) {
                assertArrayEquals(t.shape(), c.tensor(t.name(), t.shape()).shape());
            }
        }
    }

    @Test
    void kvSharingAndPerLayerEmbeddings() {
        TextConfig c = tiny(", \"num_kv_shared_layers\": 2, \"use_double_wide_mlp\": true, \"tie_word_embeddings\": false, "
                + "\"layer_types\": [\"sliding_attention\", \"full_attention\", \"sliding_attention\", \"full_attention\", "
                + "\"sliding_attention\", \"full_attention\"]");
        assertEquals(2, c.layer(4).kvSourceLayer());
        assertEquals(3, c.layer(5).kvSourceLayer());
        Set<String> names = new HashSet<>();
        WeightNames.expectedTensors(c).forEach(t -> names.add(t.name()));
        WeightNames n = WeightNames.of(c);
        assertTrue(names.contains(n.kProj(3)));
        assertFalse(names.contains(n.kProj(4)), "shared layers have no k_proj");
        assertFalse(names.contains(n.vProj(5)));
        assertFalse(names.contains(n.kNorm(4)));
        assertTrue(names.contains(n.qNorm(4)));
        assertTrue(names.contains(n.perLayerInputGate(0)));
        assertTrue(names.contains(n.embedTokensPerLayer()));
        assertTrue(names.contains(WeightNames.LM_HEAD), "untied");
        ExpectedTensor up4 = WeightNames.expectedTensors(c).stream().filter(t -> t.name().equals(n.upProj(4)))
                .findFirst().orElseThrow();
        assertArrayEquals(new long[] {48, 16}, up4.shape(), "double-wide on a shared layer");
        ExpectedTensor ple = WeightNames.expectedTensors(c).stream()
                .filter(t -> t.name().equals(n.embedTokensPerLayer())).findFirst().orElseThrow();
        assertArrayEquals(new long[] {32, 6 * 4}, ple.shape());
        roundTrip(c);
    }

    @Test
    void kEqVAndExperts() {
        TextConfig c = tiny(", \"hidden_size_per_layer_input\": 0, \"attention_k_eq_v\": true, "
                + "\"num_global_key_value_heads\": 1, \"enable_moe_block\": true, \"num_experts\": 4, "
                + "\"top_k_experts\": 2, \"moe_intermediate_size\": 8");
        List<ExpectedTensor> expected = WeightNames.expectedTensors(c);
        WeightNames n = WeightNames.of(c);
        Set<String> names = new HashSet<>();
        expected.forEach(t -> names.add(t.name()));
        assertFalse(names.contains(n.vProj(5)), "k_eq_v full layer");
        assertTrue(names.contains(n.vProj(4)));
        assertFalse(names.contains(n.perLayerInputGate(0)));
        assertFalse(names.contains(WeightNames.LM_HEAD), "tied");
        ExpectedTensor k5 = expected.stream().filter(t -> t.name().equals(n.kProj(5))).findFirst().orElseThrow();
        assertArrayEquals(new long[] {1 * 16, 16}, k5.shape(), "one global KV head of 16");
        ExpectedTensor gateUp = expected.stream().filter(t -> t.name().equals(n.expertsGateUpProj(0))).findFirst()
                .orElseThrow();
        assertArrayEquals(new long[] {4, 16, 16}, gateUp.shape());
        ExpectedTensor down = expected.stream().filter(t -> t.name().equals(n.expertsDownProj(0))).findFirst()
                .orElseThrow();
        assertArrayEquals(new long[] {4, 16, 8}, down.shape());
        roundTrip(c);
    }

    @Test
    void aCheckpointOfAnotherShapeIsRefused() {
        TextConfig c = tiny("");
        SafetensorsWriter w = new SafetensorsWriter();
        WeightNames n = WeightNames.of(c);
        w.add(n.qProj(0), DType.BF16, new long[] {16, 32}, new float[16 * 32]);
        w.write(dir.resolve(Checkpoint.SINGLE_FILE));
        try (Checkpoint cp = Checkpoint.open(dir)) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> cp.tensor(n.qProj(0), 32, 16));
            assertTrue(e.getMessage().contains(n.qProj(0)) && e.getMessage().contains(Checkpoint.SINGLE_FILE));
        }
    }
}
