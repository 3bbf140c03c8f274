package io.jemma.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Turns pieces back into text (tokenizer.json's {@code decoder}).
 *
 * <p>Each step runs as a streaming {@link DecodeStage} so that a full decode and the incremental
 * detokenizer share one implementation and cannot disagree. Steps after a {@code Fuse} see the
 * pieces as one growing string, exactly as Hugging Face's steps after Fuse see one joined token.
 */
sealed interface Decoder {

    /** Replaces matches in each piece (Gemma: U+2581 back to a space). */
    record Replace(TextPattern pattern, String content) implements Decoder {}

    /** Turns runs of {@code <0xHH>} pieces into the UTF-8 text they spell. */
    record ByteFallback() implements Decoder {}

    /** Joins all pieces into one. */
    record Fuse() implements Decoder {}

    /** Removes up to {@code start} leading and {@code stop} trailing {@code content} characters of each piece. */
    record Strip(int content, int start, int stop) implements Decoder {}

    /** Turns the replacement character back into spaces, dropping it in the first piece unless the scheme is never. */
    record Metaspace(int replacement, PreTokenizer.PrependScheme prependScheme)
            implements Decoder {}

    record Sequence(List<Decoder> steps) implements Decoder {}

    /**
     * A fresh running chain that ends in {@code sink}; {@code decoder} null means pieces joined by
     * spaces, as Hugging Face does without a decoder.
     */
    static DecodeStage open(Decoder decoder, DecodeStage sink) {
        if (decoder == null) {
            return new DecodeStage.SpaceJoin(sink);
        }
        List<Decoder> steps = new ArrayList<>();
        flatten(decoder, steps);
        boolean[] fused = new boolean[steps.size()];
        boolean seenFuse = false;
        for (int i = 0; i < steps.size(); i++) {
            fused[i] = seenFuse;
            seenFuse |= steps.get(i) instanceof Fuse;
        }
        DecodeStage stage = sink;
        for (int i = steps.size() - 1; i >= 0; i--) {
            stage = stageFor(steps.get(i), fused[i], stage);
        }
        return stage;
    }

    private static void flatten(Decoder decoder, List<Decoder> out) {
        if (decoder instanceof Sequence(List<Decoder> steps)) {
            for (Decoder step : steps) {
                flatten(step, out);
            }
        } else {
            out.add(decoder);
        }
    }

    private static DecodeStage stageFor(Decoder step, boolean fused, DecodeStage next) {
        return switch (step) {
            case Replace r when fused && r.pattern() instanceof TextPattern.Literal literal ->
                    new DecodeStage.ReplaceInStream(literal.text(), r.content(), next);
            case Replace r when fused ->
                    new DecodeStage.ReplaceAtEnd(r.pattern(), r.content(), next);
            case Replace r -> new DecodeStage.ReplaceEach(r.pattern(), r.content(), next);
            case ByteFallback b when fused -> new DecodeStage.ByteFallbackWhole(next);
            case ByteFallback b -> new DecodeStage.ByteRuns(next);
            case Fuse f -> new DecodeStage.PassThrough(next);
            case Strip s when fused ->
                    new DecodeStage.StripStream(s.content(), s.start(), s.stop(), next);
            case Strip s -> new DecodeStage.StripEach(s.content(), s.start(), s.stop(), next);
            case Metaspace m ->
                    new DecodeStage.MetaspaceUndo(
                            m.replacement(),
                            m.prependScheme() != PreTokenizer.PrependScheme.NEVER,
                            fused,
                            next);
            case Sequence s -> throw new IllegalStateException("sequences are flattened");
        };
    }
}
