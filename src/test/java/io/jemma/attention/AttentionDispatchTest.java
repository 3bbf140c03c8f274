package io.jemma.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.attention.AttentionDispatch.Choice;
import io.jemma.attention.AttentionDispatch.LayerShape;
import io.jemma.speculative.SpeculativeLimits;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The dispatch rule as a table: (model, speculative settings, page size, requested) -> backend and reason. */
class AttentionDispatchTest {

    /** Gemma 4 31B: 60 layers, 5 sliding (256, 32/16, window 1024) then 1 full (512, 32/4). */
    private static final List<LayerShape> GEMMA_31B = model(60, 6, 256, 2, 1024, 512, 8);
    /** E2B: sliding 256 with 8/1 heads (group 8), full 512 with 8/1. */
    private static final List<LayerShape> GEMMA_E2B = model(35, 5, 256, 8, 512, 512, 8);
    /** E4B: sliding 256 with 8/2 heads (group 4), full 512 with 8/2. */
    private static final List<LayerShape> GEMMA_E4B = model(42, 6, 256, 4, 512, 512, 4);
    /** The embedded model: sliding 64 (4/2 heads, window 24), full 128 (4/1). */
    private static final List<LayerShape> EMBEDDED = model(6, 3, 64, 2, 24, 128, 4);
    /** A model with 96-wide heads (not Gemma 4): no trtllm_mha variant. */
    private static final List<LayerShape> HEAD_DIM_96 = model(4, 2, 96, 4, 0, 96, 4);

    private static List<LayerShape> model(int layers, int period, int slidingHd, int slidingGroup, int window,
                                          int fullHd, int fullGroup) {
        List<LayerShape> out = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            boolean full = i % period == period - 1;
            out.add(full ? new LayerShape(i, fullHd, fullGroup, 0) : new LayerShape(i, slidingHd, slidingGroup, window));
        }
        return out;
    }

    private static SpeculativeLimits spec(int steps, int topk, int draftTokens) {
        return new SpeculativeLimits(steps, topk, draftTokens);
    }

    static Stream<Arguments> table() {
        SpeculativeLimits none = SpeculativeLimits.NONE;
        return Stream.of(
                // name, model, speculative, page size, requested, backend, reason fragment
                Arguments.of("no speculation", GEMMA_31B, none, 16, "auto", "trtllm_mha",
                        "trtllm_mha: page size 16, head dims 256/512, 1 query token per request (no speculation)"),
                Arguments.of("embedded model (head dims 64/128)", EMBEDDED, none, 16, "auto", "trtllm_mha",
                        "trtllm_mha: page size 16, head dims 64/128, 1 query token"),
                Arguments.of("embedded model 3-1-4", EMBEDDED, spec(3, 1, 4), 16, "trtllm_mha", "trtllm_mha",
                        "speculative 3-1-4 (4 query tokens per request) within its compiled limits"),
                Arguments.of("embedded model 7-1-8 (group 4 x 8 tokens = 32 rows)", EMBEDDED, spec(7, 1, 8), 16,
                        "auto", "trtllm_mha", "within its compiled limits"),
                Arguments.of("embedded model 8-1-9", EMBEDDED, spec(8, 1, 9), 16, "auto", "triton",
                        "triton: speculative-num-draft-tokens 9 > trtllm_mha's 8 query tokens at head dim 64"),
                Arguments.of("3-1-4", GEMMA_31B, spec(3, 1, 4), 16, "auto", "trtllm_mha",
                        "speculative 3-1-4 (4 query tokens per request) within its compiled limits"),
                Arguments.of("5-1-6", GEMMA_31B, spec(5, 1, 6), 16, "auto", "triton",
                        "triton: speculative-num-draft-tokens 6 > trtllm_mha's 4 query tokens at head dim 512"),
                Arguments.of("topk 2", GEMMA_31B, spec(3, 2, 6), 16, "auto", "triton",
                        "triton: speculative-eagle-topk 2 drafts a tree, and trtllm_mha has no tree masks"),
                Arguments.of("topk 2 with 4 draft tokens", GEMMA_31B, spec(2, 2, 4), 32, "auto", "triton",
                        "speculative-eagle-topk 2"),
                Arguments.of("page size 1", GEMMA_31B, none, 1, "auto", "triton",
                        "triton: page size 1 is not one of trtllm_mha's 16/32/64"),
                Arguments.of("page size 128", GEMMA_31B, spec(3, 1, 4), 128, "auto", "triton",
                        "triton: page size 128 is not one of trtllm_mha's 16/32/64"),
                Arguments.of("page size 32", GEMMA_31B, spec(3, 1, 4), 32, "auto", "trtllm_mha", "page size 32"),
                Arguments.of("page size 64", GEMMA_31B, none, 64, "auto", "trtllm_mha", "page size 64"),
                Arguments.of("head dim 512, 4 draft tokens", GEMMA_E4B, spec(3, 1, 4), 16, "auto", "trtllm_mha",
                        "head dims 256/512"),
                Arguments.of("head dim 512, 5 draft tokens", GEMMA_E4B, spec(4, 1, 5), 16, "auto", "triton",
                        "triton: speculative-num-draft-tokens 5 > trtllm_mha's 4 query tokens at head dim 512"),
                Arguments.of("E2B 3-1-4 (group 8 x 4 tokens = 32 rows)", GEMMA_E2B, spec(3, 1, 4), 16, "auto",
                        "trtllm_mha", "within its compiled limits"),
                Arguments.of("head dim 96", HEAD_DIM_96, none, 16, "auto", "triton",
                        "triton: head dim 96 (layer 0) is not one of trtllm_mha's 64/128/256/512"),
                Arguments.of("explicit triton", GEMMA_31B, spec(3, 1, 4), 16, "triton", "triton",
                        "triton: requested (jemma.attention-backend=triton)"),
                Arguments.of("explicit trtllm_mha within limits", GEMMA_31B, spec(3, 1, 4), 16, "trtllm_mha",
                        "trtllm_mha", "trtllm_mha: requested; page size 16"),
                Arguments.of("case and spaces", GEMMA_31B, none, 16, " TRTLLM_MHA ", "trtllm_mha", "requested"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("table")
    void dispatch(String name, List<LayerShape> model, SpeculativeLimits speculative, int pageSize, String requested,
                  String backend, String reason) {
        Choice c = AttentionDispatch.choose(requested, true, model, speculative, pageSize);
        assertEquals(backend, c.backend(), c.reason());
        assertTrue(c.reason().startsWith(backend + ": "), c.reason());
        assertTrue(c.reason().contains(reason), "'" + c.reason() + "' should say '" + reason + "'");
    }

    @Test
    void explicitTrtllmMhaOutsideItsLimitsIsAStartupError() {
        var e = assertThrows(IllegalArgumentException.class, () -> AttentionDispatch.choose("trtllm_mha", true,
                GEMMA_31B, spec(5, 1, 6), 16));
        assertEquals("jemma.attention-backend=trtllm_mha cannot serve this configuration: speculative-num-draft-tokens"
                + " 6 > trtllm_mha's 4 query tokens at head dim 512 (use auto or triton)", e.getMessage());
        var tree = assertThrows(IllegalArgumentException.class, () -> AttentionDispatch.choose("trtllm_mha", true,
                GEMMA_31B, spec(3, 2, 6), 16));
        assertTrue(tree.getMessage().contains("speculative-eagle-topk 2"), tree.getMessage());
        var page = assertThrows(IllegalArgumentException.class, () -> AttentionDispatch.choose("trtllm_mha", true,
                GEMMA_31B, SpeculativeLimits.NONE, 1));
        assertTrue(page.getMessage().contains("page size 1 is not one of trtllm_mha's 16/32/64"), page.getMessage());
    }

    @Test
    void unknownBackendIsAStartupError() {
        var e = assertThrows(IllegalArgumentException.class, () -> AttentionDispatch.choose("flashinfer", true,
                GEMMA_31B, SpeculativeLimits.NONE, 16));
        assertEquals("jemma.attention-backend must be auto, triton or trtllm_mha, not 'flashinfer'", e.getMessage());
    }

    @Test
    void theCpuBackendHasOneAttention() {
        for (String requested : new String[] {"auto", "triton", "trtllm_mha"}) {
            Choice c = AttentionDispatch.choose(requested, false, GEMMA_31B, spec(5, 1, 6), 1);
            assertEquals("cpu", c.backend());
            assertTrue(c.reason().startsWith("cpu: the CPU backend has one attention implementation"), c.reason());
        }
        assertTrue(AttentionDispatch.choose("trtllm_mha", false, GEMMA_31B, SpeculativeLimits.NONE, 16).reason()
                .contains("jemma.attention-backend=trtllm_mha applies to the GPU"));
    }

    @Test
    void rowsPerKvHeadAreALimitOfTheirOwn() {
        // Group 8 at head dim 256 with 5 tokens: 5 <= 8 tokens, but 40 rows > 32.
        Choice c = AttentionDispatch.choose("auto", true, GEMMA_E2B.subList(0, 4), spec(4, 1, 5), 16);
        assertEquals("triton", c.backend());
        assertEquals("triton: speculative-num-draft-tokens 5 x group size 8 (layer 0) = 40 query rows per KV head"
                + " > trtllm_mha's 32", c.reason());
        assertEquals(4, TrtllmMhaLimits.COMPILED.maxTokens(512, 8));
        assertEquals(8, TrtllmMhaLimits.COMPILED.maxTokens(256, 2));
        assertEquals(4, TrtllmMhaLimits.COMPILED.maxTokens(256, 8));
        assertEquals(8, TrtllmMhaLimits.COMPILED.maxTokens(128, 4));
        assertEquals(8, TrtllmMhaLimits.COMPILED.maxTokens(64, 2));
        assertEquals(0, TrtllmMhaLimits.COMPILED.maxTokens(96, 2));
    }
}
