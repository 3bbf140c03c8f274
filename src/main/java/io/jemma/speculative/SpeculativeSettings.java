package io.jemma.speculative;

import io.jemma.attention.TreeMask;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * Speculative decoding as configured, with sglang's flag names: {@code --speculative-algorithm NEXTN} (alias
 * {@code FROZEN_KV_MTP}) with a Gemma 4 assistant as {@code --speculative-draft-model-path},
 * {@code --speculative-num-steps}, {@code --speculative-eagle-topk}, {@code --speculative-num-draft-tokens}.
 *
 * @param algorithm  the algorithm's canonical name (NEXTN)
 * @param draftModel the assistant checkpoint directory, or {@value #EMBEDDED_DRAFT} for the embedded model's assistant
 * @param limits     steps, topk and draft tokens per round
 */
public record SpeculativeSettings(String algorithm, Path draftModel, SpeculativeLimits limits) {

    public static final String NEXTN = "NEXTN";
    /** sglang's name of the same worker (the assistant reads the target's frozen KV). */
    public static final String FROZEN_KV_MTP = "FROZEN_KV_MTP";
    /** Steps, topk and draft tokens when only a draft model is given: sglang's 3-1-4. */
    public static final int DEFAULT_STEPS = 3;
    public static final int MAX_STEPS = 16;
    public static final int MAX_TOPK = 8;
    /**
     * The draft model path that names the assistant shipped inside Jemma for its embedded model (a directory of that
     * name is {@code ./embedded}).
     */
    public static final String EMBEDDED_DRAFT = "embedded";

    /**
     * The settings the jemma.speculative-* keys describe, or empty when speculation is off. Inconsistent keys are
     * an {@link IllegalArgumentException} naming them (a startup error).
     */
    public static Optional<SpeculativeSettings> resolve(Optional<String> algorithm, Optional<String> draftModelPath,
                                                        OptionalInt numSteps, OptionalInt eagleTopk,
                                                        OptionalInt numDraftTokens) {
        Optional<String> path = draftModelPath.map(String::strip).filter(p -> !p.isEmpty());
        Optional<String> name = algorithm.map(String::strip).filter(a -> !a.isEmpty());
        if (name.isEmpty() && path.isEmpty()) {
            String set = numSteps.isPresent() ? "speculative-num-steps" : eagleTopk.isPresent() ? "speculative-eagle-topk"
                    : numDraftTokens.isPresent() ? "speculative-num-draft-tokens" : null;
            if (set != null) {
                throw new IllegalArgumentException("jemma." + set + " is set but speculative decoding is off: set "
                        + "jemma.speculative-draft-model-path to a Gemma 4 assistant checkpoint");
            }
            return Optional.empty();
        }
        String canonical = canonical(name.orElse(NEXTN));
        if (path.isEmpty()) {
            throw new IllegalArgumentException("jemma.speculative-algorithm=" + name.get() + " needs a draft model: set "
                    + "jemma.speculative-draft-model-path to the target's Gemma 4 assistant checkpoint");
        }
        int steps = numSteps.orElse(DEFAULT_STEPS);
        if (steps < 1 || steps > MAX_STEPS) {
            throw new IllegalArgumentException("jemma.speculative-num-steps must be in [1, " + MAX_STEPS + "], got "
                    + steps);
        }
        int topk = eagleTopk.orElse(1);
        if (topk < 1 || topk > MAX_TOPK) {
            throw new IllegalArgumentException("jemma.speculative-eagle-topk must be in [1, " + MAX_TOPK + "], got "
                    + topk);
        }
        int draftTokens;
        if (topk == 1) {
            draftTokens = numDraftTokens.orElse(steps + 1);
            if (draftTokens != steps + 1) {
                throw new IllegalArgumentException("jemma.speculative-num-draft-tokens must be speculative-num-steps + 1"
                        + " = " + (steps + 1) + " for a chain (speculative-eagle-topk 1), got " + draftTokens);
            }
        } else {
            // A tree keeps topk candidates per step: at most steps * topk nodes besides the root.
            int most = Math.min(steps * topk + 1, TreeMask.MAX_TOKENS);
            draftTokens = numDraftTokens.orElse(most);
            if (draftTokens < 2 || draftTokens > most) {
                throw new IllegalArgumentException("jemma.speculative-num-draft-tokens must be in [2, " + most
                        + "] for " + steps + " steps of topk " + topk + " (the root and up to steps * topk drafted "
                        + "nodes, at most " + TreeMask.MAX_TOKENS + "), got " + draftTokens);
            }
        }
        return Optional.of(new SpeculativeSettings(canonical, Path.of(path.get()),
                new SpeculativeLimits(steps, topk, draftTokens)));
    }

    private static String canonical(String algorithm) {
        String upper = algorithm.toUpperCase(Locale.ROOT);
        if (upper.equals(NEXTN) || upper.equals(FROZEN_KV_MTP)) {
            return NEXTN;
        }
        throw new IllegalArgumentException("jemma.speculative-algorithm " + algorithm + " is not supported: Jemma "
                + "drafts with a Gemma 4 assistant, NEXTN (alias FROZEN_KV_MTP)");
    }

    /** True when the draft model is the embedded model's assistant (classpath resources, not a directory). */
    public boolean embeddedDraft() {
        return draftModel.toString().equals(EMBEDDED_DRAFT);
    }

    /** The startup line: {@code NEXTN 3-1-4 with /path}. */
    @Override
    public String toString() {
        return algorithm + " " + limits + " with " + (embeddedDraft() ? "the embedded assistant" : draftModel);
    }
}
