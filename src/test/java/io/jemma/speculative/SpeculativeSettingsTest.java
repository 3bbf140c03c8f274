package io.jemma.speculative;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The jemma.speculative-* keys: sglang's names and defaults, and the startup errors for what does not fit. */
class SpeculativeSettingsTest {
    private static final Optional<String> DRAFT = Optional.of("/models/gemma-4-31b-it-assistant");

    private static Optional<SpeculativeSettings> resolve(String algorithm, Optional<String> draft, Integer steps,
                                                         Integer topk, Integer tokens) {
        return SpeculativeSettings.resolve(Optional.ofNullable(algorithm), draft, of(steps), of(topk), of(tokens));
    }

    private static OptionalInt of(Integer v) {
        return v == null ? OptionalInt.empty() : OptionalInt.of(v);
    }

    @Test
    void offWithoutADraftModel() {
        assertTrue(resolve(null, Optional.empty(), null, null, null).isEmpty());
        assertTrue(resolve(" ", Optional.of(""), null, null, null).isEmpty());
    }

    @Test
    void aDraftModelAloneMeansNextn314() {
        SpeculativeSettings s = resolve(null, DRAFT, null, null, null).orElseThrow();
        assertEquals("NEXTN", s.algorithm());
        assertEquals(new SpeculativeLimits(3, 1, 4), s.limits());
        assertEquals(Path.of("/models/gemma-4-31b-it-assistant"), s.draftModel());
        assertEquals("NEXTN 3-1-4 with /models/gemma-4-31b-it-assistant", s.toString());
    }

    @Test
    void embeddedNamesTheShippedAssistantAndADirectoryOfThatNameIsDotSlash() {
        SpeculativeSettings s = resolve(null, Optional.of(" embedded "), null, null, null).orElseThrow();
        assertTrue(s.embeddedDraft());
        assertEquals(new SpeculativeLimits(3, 1, 4), s.limits());
        assertEquals("NEXTN 3-1-4 with the embedded assistant", s.toString());
        assertFalse(resolve(null, Optional.of("./embedded"), null, null, null).orElseThrow().embeddedDraft());
        assertFalse(resolve(null, DRAFT, null, null, null).orElseThrow().embeddedDraft());
    }

    @Test
    void frozenKvMtpIsAnAliasAndChainsDefaultToStepsPlusOne() {
        assertEquals(new SpeculativeLimits(5, 1, 6), resolve("FROZEN_KV_MTP", DRAFT, 5, null, null).orElseThrow().limits());
        assertEquals("NEXTN", resolve("nextn", DRAFT, 2, 1, 3).orElseThrow().algorithm());
    }

    @Test
    void treesDefaultToEveryCandidateAndAcceptFewer() {
        assertEquals(new SpeculativeLimits(3, 2, 7), resolve("NEXTN", DRAFT, 3, 2, null).orElseThrow().limits());
        assertEquals(new SpeculativeLimits(3, 4, 8), resolve("NEXTN", DRAFT, 3, 4, 8).orElseThrow().limits());
        assertEquals(64, resolve("NEXTN", DRAFT, 16, 8, null).orElseThrow().limits().numDraftTokens(), "mask width");
    }

    @Test
    void inconsistentSettingsAreStartupErrorsNamingTheKey() {
        fails(() -> resolve("EAGLE3", DRAFT, null, null, null), "EAGLE3 is not supported", "NEXTN");
        fails(() -> resolve("NEXTN", Optional.empty(), null, null, null), "speculative-draft-model-path");
        fails(() -> resolve(null, Optional.empty(), 3, null, null), "speculative-num-steps is set");
        fails(() -> resolve(null, DRAFT, 0, null, null), "speculative-num-steps must be in [1, 16]");
        fails(() -> resolve(null, DRAFT, 3, 0, null), "speculative-eagle-topk must be in [1, 8]");
        fails(() -> resolve(null, DRAFT, 3, 1, 6), "speculative-num-draft-tokens must be speculative-num-steps + 1 = 4");
        fails(() -> resolve(null, DRAFT, 3, 2, 8), "speculative-num-draft-tokens must be in [2, 7]");
        fails(() -> resolve(null, DRAFT, 3, 2, 1), "must be in [2, 7]");
    }

    private static void fails(org.junit.jupiter.api.function.Executable e, String... mentions) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e);
        for (String m : mentions) {
            assertTrue(x.getMessage().contains(m), x.getMessage() + " should mention " + m);
        }
    }
}
