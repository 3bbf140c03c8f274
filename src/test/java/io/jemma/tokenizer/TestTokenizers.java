package io.jemma.tokenizer;

import java.util.List;

/** Tokenizers trained once per test run on synthetic English-like text. */
final class TestTokenizers {

    private static Tokenizer english;
    private static String englishJson;

    private TestTokenizers() {}

    /** A Gemma-style tokenizer with about 6000 pieces trained on English-like text. */
    static synchronized Tokenizer english() {
        if (english == null) {
            english = Tokenizer.fromJson(englishJson(), null);
        }
        return english;
    }

    static synchronized String englishJson() {
        if (englishJson == null) {
            List<String> lexicon = SyntheticTokenizers.lexicon(3000, 11);
            String corpus = SyntheticTokenizers.englishLikeText(lexicon, 300_000, 12);
            englishJson = SyntheticTokenizers.gemmaStyleTokenizerJson(corpus, 8000, 5000);
        }
        return englishJson;
    }

    static String englishText(int bytes, long seed) {
        return SyntheticTokenizers.englishLikeText(
                SyntheticTokenizers.lexicon(3000, 11), bytes, seed);
    }
}
