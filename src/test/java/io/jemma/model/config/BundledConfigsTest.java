package io.jemma.model.config;

import io.jemma.backend.DType;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The shipped configurations of the released models, and what follows from them (gemma4.md's table). */
class BundledConfigsTest {

    private static List<Integer> fullLayers(TextConfig c) {
        return c.layers().stream().filter(LayerSpec::isFull).map(LayerSpec::index).toList();
    }

    private static void commonToAll(TextConfig c) {
        assertEquals(ModelType.GEMMA4_TEXT, c.modelType());
        assertEquals("model.", c.tensorPrefix());
        assertEquals(262_144, c.vocabSize());
        assertEquals(OptionalDouble.of(30.0), c.finalLogitSoftcapping());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(OptionalInt.of(2), c.bosTokenId());
        assertEquals(List.of(1), c.eosTokenIds());
        assertEquals(OptionalInt.of(0), c.padTokenId());
        assertEquals(DType.BF16, c.weightDType().orElseThrow());
        for (LayerSpec l : c.layers()) {
            assertEquals(l.isFull() ? 512 : 256, l.headDim(), "layer " + l.index());
            assertEquals(l.isFull() ? RopeSpec.proportional(1e6, 0.25) : RopeSpec.defaultRope(1e4), l.rope());
            assertEquals(l.isSliding() ? c.slidingWindow() : 0, l.slidingWindow());
        }
        assertTrue(c.layers().getLast().isFull());
    }

    @Test
    void gemma4_31b() {
        TextConfig c = BundledConfigs.load(BundledConfigs.GEMMA_4_31B);
        commonToAll(c);
        assertEquals(5376, c.hiddenSize());
        assertEquals(60, c.numHiddenLayers());
        assertEquals(262_144, c.maxPositionEmbeddings());
        assertEquals(1024, c.slidingWindow());
        assertEquals(IntStream.iterate(5, i -> i < 60, i -> i + 6).boxed().toList(), fullLayers(c), "5:1");
        assertFalse(c.hasPerLayerEmbeddings());
        for (LayerSpec l : c.layers()) {
            assertEquals(32, l.numHeads());
            assertEquals(l.isFull() ? 4 : 16, l.numKvHeads(), "full layers: num_global_key_value_heads");
            assertEquals(l.isFull(), l.kEqV());
            assertEquals(!l.isFull(), l.hasVProj());
            assertFalse(l.kvShared());
            assertEquals(l.index(), l.kvSourceLayer());
            assertEquals(21504, l.mlpWidth());
            assertFalse(l.moe());
        }
        assertEquals(32 * 512, c.layer(5).qDim());
        assertEquals(4 * 512, c.layer(5).kvDim());
        assertEquals(8, c.layer(5).kvGroups());
        assertEquals(16 * 256, c.layer(0).kvDim());
        assertEquals(DType.BF16.round((float) Math.sqrt(5376)), c.embeddingScale());
    }

    @Test
    void gemma4_26bA4b() {
        TextConfig c = BundledConfigs.load(BundledConfigs.GEMMA_4_26B_A4B);
        commonToAll(c);
        assertEquals(2816, c.hiddenSize());
        assertEquals(30, c.numHiddenLayers());
        assertEquals(1024, c.slidingWindow());
        assertEquals(List.of(5, 11, 17, 23, 29), fullLayers(c));
        assertTrue(c.enableMoeBlock());
        assertEquals(OptionalInt.of(128), c.numExperts());
        assertEquals(OptionalInt.of(8), c.topKExperts());
        assertEquals(OptionalInt.of(704), c.moeIntermediateSize());
        for (LayerSpec l : c.layers()) {
            assertTrue(l.moe());
            assertEquals(2112, l.mlpWidth());
            assertEquals(16, l.numHeads());
            assertEquals(l.isFull() ? 2 : 8, l.numKvHeads());
            assertEquals(l.isFull(), l.kEqV());
        }
    }

    @Test
    void gemma4_e4b() {
        TextConfig c = BundledConfigs.load(BundledConfigs.GEMMA_4_E4B);
        commonToAll(c);
        assertEquals(2560, c.hiddenSize());
        assertEquals(42, c.numHiddenLayers());
        assertEquals(131_072, c.maxPositionEmbeddings());
        assertEquals(512, c.slidingWindow());
        assertEquals(List.of(5, 11, 17, 23, 29, 35, 41), fullLayers(c));
        assertTrue(c.hasPerLayerEmbeddings());
        assertEquals(256, c.hiddenSizePerLayerInput());
        assertEquals(16.0f, c.perLayerEmbeddingScale());
        assertEquals(24, c.firstKvSharedLayer());
        for (LayerSpec l : c.layers()) {
            assertEquals(8, l.numHeads());
            assertEquals(2, l.numKvHeads(), "no global KV heads without k_eq_v");
            assertFalse(l.kEqV());
            assertEquals(l.index() >= 24, l.kvShared());
            assertEquals(10240, l.mlpWidth(), "E4B has no double-wide MLP");
            if (l.kvShared()) {
                assertEquals(l.isFull() ? 23 : 22, l.kvSourceLayer(), "last non-shared layer of the same type");
                assertFalse(l.hasKProj());
                assertFalse(l.hasVProj());
            }
        }
    }

    @Test
    void gemma4_e2b() {
        TextConfig c = BundledConfigs.load(BundledConfigs.GEMMA_4_E2B);
        commonToAll(c);
        assertEquals(1536, c.hiddenSize());
        assertEquals(35, c.numHiddenLayers());
        assertEquals(List.of(4, 9, 14, 19, 24, 29, 34), fullLayers(c), "4:1");
        assertEquals(15, c.firstKvSharedLayer());
        LayerSpec last = c.layer(34);
        assertTrue(last.kvShared());
        assertEquals(14, last.kvSourceLayer(), "the last non-shared full layer");
        assertEquals(13, c.layer(15).kvSourceLayer(), "the last non-shared sliding layer");
        assertEquals(12288, last.mlpWidth(), "double-wide MLP on shared layers");
        assertEquals(6144, c.layer(14).mlpWidth());
        assertEquals(1, last.numKvHeads());
        assertEquals(8, last.kvGroups());
        assertEquals(DType.BF16.round((float) Math.sqrt(1536)), c.embeddingScale());
        assertEquals(39.25f, c.embeddingScale());
    }

    @Test
    void unknownNameIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> BundledConfigs.load("gemma-5"));
        assertEquals(4, BundledConfigs.NAMES.size());
    }
}
