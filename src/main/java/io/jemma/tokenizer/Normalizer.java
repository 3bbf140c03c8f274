package io.jemma.tokenizer;

import java.util.List;

/**
 * Rewrites text before BPE. Hugging Face applies it to each stretch of text between added tokens
 * separately, so Prepend adds its prefix to every stretch.
 */
sealed interface Normalizer {

    String normalize(String text);

    /** Replaces every match; Gemma turns spaces into U+2581 this way. */
    record Replace(TextPattern pattern, String content) implements Normalizer {
        @Override
        public String normalize(String text) {
            return pattern.replaceAll(text, content);
        }
    }

    /** Adds a prefix to non-empty text (SentencePiece's dummy prefix for Llama-style tokenizers). */
    record Prepend(String prefix) implements Normalizer {
        @Override
        public String normalize(String text) {
            return text.isEmpty() ? text : prefix + text;
        }
    }

    /** NFC, NFD, NFKC or NFKD. */
    record Unicode(java.text.Normalizer.Form form) implements Normalizer {
        @Override
        public String normalize(String text) {
            return java.text.Normalizer.normalize(text, form);
        }
    }

    record Sequence(List<Normalizer> steps) implements Normalizer {
        @Override
        public String normalize(String text) {
            for (Normalizer step : steps) {
                text = step.normalize(text);
            }
            return text;
        }
    }
}
