package io.jemma.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.junit.jupiter.api.Test;

import java.util.Random;

/** Any text survives encode then decode, and the fast BPE agrees with a naive one. */
class RoundTripTest {

    @Test
    void randomUnicodeTextSurvivesEncodeAndDecode() {
        Tokenizer t = TestTokenizers.english();
        Random random = new Random(20240601);
        for (int i = 0; i < 3000; i++) {
            String text = RandomText.next(random, 80);
            assertEquals(text, t.decode(t.encode(text)), () -> "round trip of " + Json.quote(text));
        }
    }

    @Test
    void englishProseSurvivesEncodeAndDecode() {
        Tokenizer t = TestTokenizers.english();
        String text = TestTokenizers.englishText(50_000, 99);

        assertEquals(text, t.decode(t.encode(text)));
    }

    @Test
    void theSpaceMarkItselfDecodesAsASpaceAsInTokenizers() {
        Tokenizer t = TestTokenizers.english();

        assertEquals("a b", t.decode(t.encode("a\u2581b")));
    }

    @Test
    void unpairedSurrogatesBecomeReplacementCharacters() {
        Tokenizer t = TestTokenizers.english();

        assertEquals("a\uFFFDb\uFFFD", t.decode(t.encode("a\uD800b\uDC00")));
        assertEquals("😀", t.decode(t.encode("😀")));
    }

    @Test
    void fastBpeAgreesWithNaiveBpe() {
        String json = TestTokenizers.englishJson();
        assertAgreesWithNaiveBpe(json, 0xBEEF);
    }

    /**
     * Merges that join a word to the following U+2581 stop the tokenizer from cutting text into
     * cached words there; the ids must still be exactly those of merging the whole text.
     */
    @Test
    void fastBpeAgreesWithNaiveBpeWhenMergesCrossWordBoundaries() {
        ObjectNode root = TokenizerJson.node(TestTokenizers.englishJson());
        ObjectNode vocab = (ObjectNode) root.get("model").get("vocab");
        ArrayNode merges = (ArrayNode) root.get("model").get("merges");
        String mark = TokenizerJson.MARK;
        String[][] crossing = {
            {"s", mark + "the"}, {".", mark}, {",", mark}, {"e", mark}, {"<0x80>", mark}
        };
        for (String[] m : crossing) {
            if (vocab.has(m[0]) && vocab.has(m[1]) && !vocab.has(m[0] + m[1])) {
                vocab.put(m[0] + m[1], vocab.size());
                merges.insert(0, TokenizerJson.MAPPER.createArrayNode().add(m[0]).add(m[1]));
            }
        }
        assertAgreesWithNaiveBpe(root.toString(), 0xCAFE);
    }

    /**
     * Long runs without spaces (Chinese, text with spaces removed, digits and punctuation) are cut
     * where no merge can join; with CJK merges in the vocabulary the ids must still equal merging
     * the whole run.
     */
    @Test
    void longRunsWithoutSpacesAgreeWithNaiveBpe() {
        ObjectNode root = TokenizerJson.node(TestTokenizers.englishJson());
        ObjectNode vocab = (ObjectNode) root.get("model").get("vocab");
        ArrayNode merges = (ArrayNode) root.get("model").get("merges");
        Random random = new Random(77);
        java.util.List<String> cjk = new java.util.ArrayList<>();
        for (int cp = 0x4E00; cp < 0x4F00; cp++) {
            String c = Character.toString(cp);
            cjk.add(c);
            if (!vocab.has(c)) {
                vocab.put(c, vocab.size());
            }
        }
        for (String punct : new String[] {"\u3002", "\uFF0C", "3", "7"}) {
            if (!vocab.has(punct)) {
                vocab.put(punct, vocab.size());
            }
        }
        java.util.List<String> pieces = new java.util.ArrayList<>(cjk);
        for (int k = 0; k < 1500; k++) {
            String left = pieces.get(random.nextInt(pieces.size()));
            String right = k % 50 == 0 ? "\u3002" : cjk.get(random.nextInt(cjk.size()));
            if (!vocab.has(left + right) && left.length() < 6) {
                vocab.put(left + right, vocab.size());
                merges.add(TokenizerJson.MAPPER.createArrayNode().add(left).add(right));
                pieces.add(left + right);
            }
        }
        assertAgreesWithNaiveBpe(
                root.toString(),
                0xD00D,
                r -> {
                    StringBuilder s = new StringBuilder();
                    int length = 60 + r.nextInt(300);
                    while (s.length() < length) {
                        switch (r.nextInt(6)) {
                            case 0 ->
                                    s.append(
                                            TestTokenizers.englishText(
                                                            30 + r.nextInt(100), r.nextLong())
                                                    .replace(" ", ""));
                            case 1 -> s.append(r.nextInt(100000));
                            case 2 -> s.append(r.nextBoolean() ? "\u3002" : "\uFF0C");
                            case 3 -> s.appendCodePoint(0x1F600 + r.nextInt(50));
                            default -> s.append(cjk.get(r.nextInt(cjk.size())));
                        }
                    }
                    return s.toString();
                });
    }

    private static void assertAgreesWithNaiveBpe(String json, long seed) {
        assertAgreesWithNaiveBpe(
                json,
                seed,
                random ->
                        random.nextBoolean()
                                ? TestTokenizers.englishText(
                                        40 + random.nextInt(300), random.nextLong())
                                : RandomText.next(random, 60)
                                        .replace("<bos>", "")
                                        .replace('x', '\u2581'));
    }

    private static void assertAgreesWithNaiveBpe(
            String json, long seed, java.util.function.Function<Random, String> texts) {
        Tokenizer fast = Tokenizer.fromJson(json, null);
        ReferenceBpe naive = new ReferenceBpe(json);
        Random random = new Random(seed);
        for (int i = 0; i < 400; i++) {
            String text = texts.apply(random);
            assertArrayEquals(
                    naive.encode(text), fast.encode(text), () -> "ids of " + Json.quote(text));
        }
    }
}
