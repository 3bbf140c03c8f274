package io.jemma.bench;

import io.jemma.tokenizer.Tokenizer;

import java.util.Random;

/** Makes random prompt text of a given length in tokens, and counts the tokens of text. */
public sealed interface RandomText permits RandomText.TokenIds, RandomText.Words {

    /** Random text about {@code tokens} tokens long, drawn from {@code rng}. */
    String text(int tokens, Random rng);

    /** The length of text in this source's tokens. */
    int count(String text);

    /** Whether lengths are real tokenizer tokens (else they are word counts, an approximation). */
    boolean exact();

    static RandomText of(Tokenizer tokenizer) {
        return new TokenIds(tokenizer);
    }

    static RandomText words() {
        return new Words();
    }

    /**
     * sglang's way: random token ids decoded through the model's tokenizer. Special tokens are left out of
     * the draw, because a decoded {@code <start_of_turn>} or {@code <eos>} would be read back by the server as
     * a control token and change the request's meaning, not just its length.
     */
    final class TokenIds implements RandomText {
        private final Tokenizer tokenizer;
        private final int[] ordinaryIds;

        TokenIds(Tokenizer tokenizer) {
            this.tokenizer = tokenizer;
            int[] ids = new int[tokenizer.vocabSize()];
            int n = 0;
            for (int id = 0; id < ids.length; id++) {
                if (!tokenizer.isSpecial(id) && hasPiece(tokenizer, id)) {
                    ids[n++] = id;
                }
            }
            if (n == 0) {
                throw new IllegalArgumentException("the tokenizer has no ordinary tokens to draw prompts from");
            }
            this.ordinaryIds = java.util.Arrays.copyOf(ids, n);
        }

        private static boolean hasPiece(Tokenizer tokenizer, int id) {
            try {
                tokenizer.piece(id);
                return true;
            } catch (IllegalArgumentException holeInTheVocabulary) {
                return false;
            }
        }

        @Override
        public String text(int tokens, Random rng) {
            int[] ids = new int[tokens];
            for (int i = 0; i < tokens; i++) {
                ids[i] = ordinaryIds[rng.nextInt(ordinaryIds.length)];
            }
            return tokenizer.decode(ids);
        }

        @Override
        public int count(String text) {
            return tokenizer.encode(text).length; // no BOS, as sglang's retokenized counts

        }

        @Override
        public boolean exact() {
            return true;
        }

        Tokenizer tokenizer() {
            return tokenizer;
        }
    }

    /**
     * The fallback without a tokenizer: random English-like words, one word standing for one token. Real
     * tokenizers give roughly 1 to 1.5 tokens per such word, so lengths are approximate; the server's usage
     * figures, when it reports them, give the true counts.
     */
    final class Words implements RandomText {
        private static final String[] ONSETS = {"b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "w",
            "st", "tr", "pl", "ch", "sh", "th"};
        private static final String[] VOWELS = {"a", "e", "i", "o", "u", "ea", "ou", "ai"};
        private static final String[] CODAS = {"", "", "n", "r", "s", "t", "nd", "ng", "ll", "ck"};

        @Override
        public String text(int tokens, Random rng) {
            StringBuilder sb = new StringBuilder(tokens * 7);
            for (int i = 0; i < tokens; i++) {
                if (i > 0) {
                    sb.append(' ');
                }
                int syllables = 1 + rng.nextInt(2);
                for (int s = 0; s < syllables; s++) {
                    sb.append(ONSETS[rng.nextInt(ONSETS.length)])
                            .append(VOWELS[rng.nextInt(VOWELS.length)])
                            .append(CODAS[rng.nextInt(CODAS.length)]);
                }
            }
            return sb.toString();
        }

        @Override
        public int count(String text) {
            String trimmed = text.strip();
            return trimmed.isEmpty() ? 0 : trimmed.split("\\s+").length;
        }

        @Override
        public boolean exact() {
            return false;
        }
    }
}
