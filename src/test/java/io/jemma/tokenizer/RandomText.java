package io.jemma.tokenizer;

import java.util.Random;

/** Seeded random strings that are valid UTF-16 but otherwise anything: scripts, emoji, marks, whitespace runs. */
final class RandomText {

    private static final int[][] RANGES = {
        {'a', 'z'},
        {'A', 'Z'},
        {'0', '9'},
        {'!', '/'},
        {0xC0, 0x17F}, // Latin with accents
        {0x300, 0x36F}, // combining marks
        {0x391, 0x3C9},
        {0x410, 0x44F},
        {0x5D0, 0x5EA},
        {0x627, 0x64A},
        {0x905, 0x939},
        {0x3041, 0x3096},
        {0x4E00, 0x4FFF},
        {0xAC00, 0xAC80}, // kana, CJK, Hangul
        {0x1F600, 0x1F64F},
        {0x1F900, 0x1F9FF},
        {0x1F1E6, 0x1F1FF}, // emoji (surrogate pairs)
        {0x10000, 0x1000F},
        {0xFE0F, 0xFE0F},
        {0x200D, 0x200D},
        {0xFFFD, 0xFFFD}
    };
    private static final String[] FRAGMENTS = {
        " ", " ", "  ", "   ", "\n", "\n\n", "\t", "the", " the", " people", "<bos>", "<0x41>",
        "\r\n"
    };

    private RandomText() {}

    /**
     * Without U+2581: Gemma's decoder turns every U+2581 into a space (tokenizers does the same), so
     * that one character cannot survive a round trip.
     */
    static String next(Random random, int maxLength) {
        int length = random.nextInt(maxLength + 1);
        StringBuilder s = new StringBuilder();
        while (s.length() < length) {
            if (random.nextInt(4) == 0) {
                s.append(FRAGMENTS[random.nextInt(FRAGMENTS.length)]);
            } else {
                int[] range = RANGES[random.nextInt(RANGES.length)];
                // (the ranges leave out U+2581, see above)
                s.appendCodePoint(range[0] + random.nextInt(range[1] - range[0] + 1));
            }
        }
        return s.toString();
    }
}
