package io.jemma.tokenizer;

import static io.jemma.tokenizer.TokenizerJson.MARK;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.node.ObjectNode;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

/** Streaming decode: text appears as soon as it is final, and all of it equals the full decode. */
class IncrementalDetokenizerTest {

    private static int id(Tokenizer t, String piece) {
        return t.tokenId(piece).orElseThrow();
    }

    @Test
    void spaceMarksBecomeSpacesAsPiecesArrive() {
        Tokenizer t = TestTokenizers.english();
        IncrementalDetokenizer d = t.newDetokenizer();

        assertEquals("the", d.push(id(t, "the")));
        assertEquals(" people", d.push(id(t, MARK + "people")));
        assertEquals("", d.flush());
    }

    @Test
    void aCharacterSpreadOverBytePiecesAppearsWhenTheRunEnds() {
        Tokenizer t = TestTokenizers.english();
        IncrementalDetokenizer d = t.newDetokenizer();

        assertEquals("", d.push(id(t, "<0xE2>")));
        assertEquals("", d.push(id(t, "<0x82>")));
        assertEquals(
                "", d.push(id(t, "<0xAC>"))); // a following byte could still make the run invalid
        assertEquals("€ people", d.push(id(t, MARK + "people")));
        assertEquals("", d.flush());
    }

    @Test
    void anUnfinishedCharacterFlushesAsReplacementCharacters() {
        Tokenizer t = TestTokenizers.english();
        IncrementalDetokenizer d = t.newDetokenizer();

        assertEquals("the", d.push(id(t, "the")));
        assertEquals("", d.push(id(t, "<0xF0>")));
        assertEquals("", d.push(id(t, "<0x9F>")));
        assertEquals("\uFFFD\uFFFD", d.flush());
    }

    @Test
    void specialTokensAreSkippedUnlessAskedFor() {
        Tokenizer t = TestTokenizers.english();
        int[] ids = t.encode("<bos><|turn>the<turn|>");

        assertEquals("the", stream(t.newDetokenizer(), ids));
        assertEquals("<bos><|turn>the<turn|>", stream(t.newDetokenizer(false), ids));
    }

    @Test
    void pushAfterFlushIsAnError() {
        IncrementalDetokenizer d = TestTokenizers.english().newDetokenizer();
        d.flush();

        assertThrows(IllegalStateException.class, () -> d.push(5));
    }

    @Test
    void randomIdSequencesStreamToTheFullDecode() {
        assertStreamsLikeFullDecode(TestTokenizers.english(), 1);
    }

    @Test
    void otherDecoderChainsStreamToTheirFullDecode() {
        String mark = "\"" + MARK + "\"";
        List<String> decoders =
                List.of(
                        // Llama: Strip after Fuse removes the first space of the whole text
                        "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":"
                                + mark
                                + "},\"content\":\" \"},"
                                + "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":2}]}",
                        "{\"type\":\"Metaspace\",\"replacement\":"
                                + mark
                                + ",\"prepend_scheme\":\"first\",\"split\":true}",
                        // a multi-character literal replaced after Fuse can straddle pieces
                        "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                                + "{\"type\":\"Replace\",\"pattern\":{\"String\":\"e"
                                + MARK
                                + "t\"},\"content\":\"#\"},"
                                + "{\"type\":\"Metaspace\",\"replacement\":"
                                + mark
                                + ",\"prepend_scheme\":\"always\"}]}",
                        "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},{\"type\":\"ByteFallback\"},"
                                + "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\"_\"}]}",
                        "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Strip\",\"content\":"
                                + mark
                                + ",\"start\":1,\"stop\":1},{\"type\":\"ByteFallback\"}]}");
        for (int i = 0; i < decoders.size(); i++) {
            ObjectNode root = TokenizerJson.node(TestTokenizers.englishJson());
            root.set("decoder", TokenizerJson.node(decoders.get(i)));
            assertStreamsLikeFullDecode(Tokenizer.fromJson(root.toString(), null), 100 + i);
        }
        ObjectNode root = TokenizerJson.node(TestTokenizers.englishJson());
        root.putNull("decoder");
        assertStreamsLikeFullDecode(Tokenizer.fromJson(root.toString(), null), 200);
    }

    private static void assertStreamsLikeFullDecode(Tokenizer t, long seed) {
        Random random = new Random(seed);
        for (int round = 0; round < 300; round++) {
            int[] ids = randomIds(t, random, random.nextInt(40));
            for (boolean skip : new boolean[] {true, false}) {
                IncrementalDetokenizer d = t.newDetokenizer(skip);
                StringBuilder streamed = new StringBuilder();
                for (int id : ids) {
                    String part = d.push(id);
                    assertFalse(hasLoneSurrogate(part), "pushed text must be whole characters");
                    streamed.append(part);
                }
                streamed.append(d.flush());
                String expected = t.decode(ids, skip);
                assertEquals(
                        expected,
                        streamed.toString(),
                        () -> "ids " + java.util.Arrays.toString(ids));
            }
        }
    }

    /** Mostly ordinary pieces, many byte pieces (whole characters, cut-off ones and stray bytes), some specials and unused ids. */
    private static int[] randomIds(Tokenizer t, Random random, int length) {
        IntStream.Builder ids = IntStream.builder();
        for (int n = 0; n < length; n++) {
            switch (random.nextInt(10)) {
                case 0, 1, 2 -> {
                    byte[] bytes =
                            Character.toString(0x80 + random.nextInt(0x1F000))
                                    .getBytes(StandardCharsets.UTF_8);
                    int cut =
                            random.nextInt(4) == 0
                                    ? random.nextInt(bytes.length) + 1
                                    : bytes.length;
                    for (int i = 0; i < cut; i++) {
                        ids.add(id(t, String.format("<0x%02X>", bytes[i] & 0xFF)));
                    }
                }
                case 3 -> ids.add(id(t, String.format("<0x%02X>", random.nextInt(256))));
                case 4 -> ids.add(random.nextInt(8)); // special tokens
                case 5 -> ids.add(random.nextBoolean() ? -1 : t.vocabSize() + random.nextInt(5));
                default -> ids.add(random.nextInt(t.vocabSize()));
            }
        }
        return ids.build().toArray();
    }

    private static String stream(IncrementalDetokenizer d, int[] ids) {
        StringBuilder out = new StringBuilder();
        for (int id : ids) {
            out.append(d.push(id));
        }
        return out.append(d.flush()).toString();
    }

    private static boolean hasLoneSurrogate(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c)
                    && (i + 1 == s.length() || !Character.isLowSurrogate(s.charAt(i + 1)))) {
                return true;
            }
            if (Character.isLowSurrogate(c)
                    && (i == 0 || !Character.isHighSurrogate(s.charAt(i - 1)))) {
                return true;
            }
            if (Character.isHighSurrogate(c)) {
                i++;
            }
        }
        return false;
    }
}
