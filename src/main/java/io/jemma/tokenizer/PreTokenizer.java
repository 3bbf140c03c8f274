package io.jemma.tokenizer;

import java.util.ArrayList;
import java.util.List;

/** Cuts normalized text into words that BPE encodes independently. */
sealed interface PreTokenizer {

    /**
     * A piece of text on its way to BPE. {@code atStart}: it begins at offset 0 of the input, which
     * Metaspace's {@code prepend_scheme: first} needs to know.
     */
    record Word(String text, boolean atStart) {}

    /** Appends the pieces of {@code word} to {@code out}, dropping empty ones as Hugging Face does. */
    void split(Word word, List<Word> out);

    /** How a delimiter found by Split stays in the output. */
    enum Behavior {
        REMOVED,
        ISOLATED,
        MERGED_WITH_PREVIOUS,
        MERGED_WITH_NEXT,
        CONTIGUOUS;

        /** Groups the spans into [start, end) pieces, null marking a removed one, following tokenizers' SplitDelimiterBehavior. */
        List<int[]> group(List<TextPattern.Span> spans) {
            List<int[]> pieces = new ArrayList<>(spans.size());
            boolean previousMatch = false;
            switch (this) {
                case REMOVED -> {
                    for (TextPattern.Span s : spans) {
                        if (!s.isMatch()) {
                            pieces.add(new int[] {s.start(), s.end()});
                        }
                    }
                }
                case ISOLATED -> {
                    for (TextPattern.Span s : spans) {
                        pieces.add(new int[] {s.start(), s.end()});
                    }
                }
                case CONTIGUOUS -> {
                    for (TextPattern.Span s : spans) {
                        if (s.isMatch() == previousMatch && !pieces.isEmpty()) {
                            pieces.getLast()[1] = s.end();
                        } else {
                            pieces.add(new int[] {s.start(), s.end()});
                        }
                        previousMatch = s.isMatch();
                    }
                }
                case MERGED_WITH_PREVIOUS -> {
                    for (TextPattern.Span s : spans) {
                        if (s.isMatch() && !previousMatch && !pieces.isEmpty()) {
                            pieces.getLast()[1] = s.end();
                        } else {
                            pieces.add(new int[] {s.start(), s.end()});
                        }
                        previousMatch = s.isMatch();
                    }
                }
                case MERGED_WITH_NEXT -> {
                    for (int i = spans.size() - 1; i >= 0; i--) {
                        TextPattern.Span s = spans.get(i);
                        if (s.isMatch() && !previousMatch && !pieces.isEmpty()) {
                            pieces.getLast()[0] = s.start();
                        } else {
                            pieces.add(new int[] {s.start(), s.end()});
                        }
                        previousMatch = s.isMatch();
                    }
                    java.util.Collections.reverse(pieces);
                }
            }
            return pieces;
        }
    }

    /** Metaspace's choice of where to add the replacement character in front of a word. */
    enum PrependScheme {
        ALWAYS,
        FIRST,
        NEVER
    }

    record Split(TextPattern pattern, Behavior behavior, boolean invert) implements PreTokenizer {
        @Override
        public void split(Word word, List<Word> out) {
            String text = word.text();
            List<TextPattern.Span> spans = pattern.spans(text);
            if (invert) {
                spans =
                        spans.stream()
                                .map(s -> new TextPattern.Span(s.start(), s.end(), !s.isMatch()))
                                .toList();
            }
            emit(word, behavior.group(spans), out);
        }
    }

    /** SentencePiece-style: spaces become the replacement character, which then starts each word. */
    record Metaspace(int replacement, PrependScheme prependScheme, boolean splitWords)
            implements PreTokenizer {
        @Override
        public void split(Word word, List<Word> out) {
            String mark = Character.toString(replacement);
            String text = word.text().replace(" ", mark);
            boolean prepend =
                    switch (prependScheme) {
                        case ALWAYS -> true;
                        case FIRST -> word.atStart();
                        case NEVER -> false;
                    };
            if (prepend && !text.startsWith(mark)) {
                text = mark + text;
            }
            Word replaced = new Word(text, word.atStart());
            if (!splitWords) {
                out.add(replaced);
                return;
            }
            emit(
                    replaced,
                    Behavior.MERGED_WITH_NEXT.group(new TextPattern.Literal(mark).spans(text)),
                    out);
        }
    }

    record Sequence(List<PreTokenizer> steps) implements PreTokenizer {
        @Override
        public void split(Word word, List<Word> out) {
            List<Word> words = List.of(word);
            for (PreTokenizer step : steps) {
                List<Word> next = new ArrayList<>();
                for (Word w : words) {
                    step.split(w, next);
                }
                words = next;
            }
            out.addAll(words);
        }
    }

    private static void emit(Word word, List<int[]> pieces, List<Word> out) {
        String text = word.text();
        for (int[] piece : pieces) {
            if (piece[1] > piece[0]) {
                String part =
                        piece[0] == 0 && piece[1] == text.length()
                                ? text
                                : text.substring(piece[0], piece[1]);
                out.add(new Word(part, word.atStart() && piece[0] == 0));
            }
        }
    }
}
