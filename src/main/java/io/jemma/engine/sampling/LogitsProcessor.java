package io.jemma.engine.sampling;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * Adjusts one sequence's logits before sampling: penalties over what it has seen, and the end tokens
 * masked while fewer than min_tokens have been generated.
 */
public final class LogitsProcessor {
    private final Penalties penalties;
    private final Map<Integer, Integer> generatedCounts = new HashMap<>();
    private final Set<Integer> promptTokens;

    public LogitsProcessor(Penalties penalties, int[] prompt) {
        this.penalties = penalties;
        this.promptTokens = penalties.repetition() == 1 ? Set.of() : toSet(prompt);
    }

    public Penalties penalties() {
        return penalties;
    }

    /** Distinct prompt tokens (kept only when the repetition penalty applies to them). */
    public Set<Integer> promptTokens() {
        return java.util.Collections.unmodifiableSet(promptTokens);
    }

    /** How often each generated token has occurred so far. */
    public Map<Integer, Integer> generatedCounts() {
        return java.util.Collections.unmodifiableMap(generatedCounts);
    }

    /** Records a generated token. */
    public void accept(int token) {
        generatedCounts.merge(token, 1, Integer::sum);
    }

    /**
     * @param endTokens tokens to forbid (EOS and stop tokens while under min_tokens); may be empty
     */
    public void apply(float[] logits, int offset, int vocab, Set<Integer> endTokens) {
        if (!penalties.none()) {
            if (penalties.repetition() != 1) {
                float r = (float) penalties.repetition();
                for (int t : promptTokens) {
                    repeat(logits, offset, vocab, t, r);
                }
                for (int t : generatedCounts.keySet()) {
                    if (!promptTokens.contains(t)) {
                        repeat(logits, offset, vocab, t, r);
                    }
                }
            }
            for (var e : generatedCounts.entrySet()) {
                int t = e.getKey();
                if (t >= 0 && t < vocab) {
                    logits[offset + t] -= (float) (penalties.frequency() * e.getValue() + penalties.presence());
                }
            }
        }
        for (int t : endTokens) {
            if (t >= 0 && t < vocab) {
                logits[offset + t] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    private static void repeat(float[] logits, int offset, int vocab, int t, float r) {
        if (t >= 0 && t < vocab) {
            float l = logits[offset + t];
            logits[offset + t] = l > 0 ? l / r : l * r;
        }
    }

    private static Set<Integer> toSet(int[] ids) {
        var s = new java.util.HashSet<Integer>();
        for (int id : ids) {
            s.add(id);
        }
        return s;
    }
}
