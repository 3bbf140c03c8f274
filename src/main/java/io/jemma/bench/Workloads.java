package io.jemma.bench;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/** The request sets of sglang bench_serving's {@code random} and {@code generated-shared-prefix} datasets. */
public final class Workloads {

    private Workloads() {
    }

    /** The generated-shared-prefix shape: groups x prompts per group, each a shared system prompt + a question. */
    public record SharedPrefixShape(int groups, int promptsPerGroup, int systemPromptLen, int questionLen,
            int outputLen) {
        public SharedPrefixShape {
            if (groups < 1 || promptsPerGroup < 1 || systemPromptLen < 1 || questionLen < 1 || outputLen < 1) {
                throw new IllegalArgumentException("generated-shared-prefix sizes must all be at least 1: " + this);
            }
        }

        public int size() {
            return groups * promptsPerGroup;
        }
    }

    /**
     * sglang's random dataset: input and output lengths drawn uniformly from
     * {@code [max(floor(len * rangeRatio), 1), len]}, prompt text random tokens. The input length recorded is
     * the drawn one, as sglang records it (a decoded-then-re-encoded random text can differ by a few tokens).
     */
    public static List<Prompt> random(RandomText text, int count, int inputLen, int outputLen, double rangeRatio,
            Random rng) {
        if (inputLen < 1 || outputLen < 1) {
            throw new IllegalArgumentException("--random-input-len and --random-output-len must be at least 1");
        }
        if (!(rangeRatio >= 0 && rangeRatio <= 1)) {
            throw new IllegalArgumentException("--random-range-ratio must be in [0, 1], not " + rangeRatio);
        }
        // Draw all lengths first, then the texts, as sglang does, so lengths do not depend on the tokenizer.
        int[] inputs = new int[count];
        int[] outputs = new int[count];
        for (int i = 0; i < count; i++) {
            inputs[i] = uniform(rng, lowerBound(inputLen, rangeRatio), inputLen);
        }
        for (int i = 0; i < count; i++) {
            outputs[i] = uniform(rng, lowerBound(outputLen, rangeRatio), outputLen);
        }
        List<Prompt> prompts = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            prompts.add(new Prompt(text.text(inputs[i], rng), inputs[i], outputs[i]));
        }
        return prompts;
    }

    /**
     * sglang's generated-shared-prefix dataset: each group has one random system prompt that all its prompts
     * start with (what a prefix cache can reuse), followed by a blank line and a random question of its own.
     * The requests are shuffled so that a group's prompts do not arrive back to back. Input lengths are
     * counted on the full prompt text.
     */
    public static List<Prompt> sharedPrefix(RandomText text, SharedPrefixShape shape, Random rng) {
        List<String> systemPrompts = new ArrayList<>(shape.groups());
        for (int g = 0; g < shape.groups(); g++) {
            systemPrompts.add(text.text(shape.systemPromptLen(), rng));
        }
        List<Prompt> prompts = new ArrayList<>(shape.size());
        for (int g = 0; g < shape.groups(); g++) {
            for (int p = 0; p < shape.promptsPerGroup(); p++) {
                String full = systemPrompts.get(g) + "\n\n" + text.text(shape.questionLen(), rng);
                prompts.add(new Prompt(full, text.count(full), shape.outputLen()));
            }
        }
        Collections.shuffle(prompts, rng);
        return prompts;
    }

    static int lowerBound(int len, double rangeRatio) {
        return Math.max((int) (len * rangeRatio), 1);
    }

    /** A uniform draw from the closed range [lo, hi]. */
    private static int uniform(Random rng, int lo, int hi) {
        return lo + rng.nextInt(hi - lo + 1);
    }
}
