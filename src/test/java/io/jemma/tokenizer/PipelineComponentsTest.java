package io.jemma.tokenizer;

import static io.jemma.tokenizer.BpeEncodingTest.pieces;
import static io.jemma.tokenizer.TokenizerJson.MARK;
import static io.jemma.tokenizer.TokenizerJson.node;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

/** Normalizers, pre-tokenizers and decoders other than the plain Gemma setup, as tokenizer.json declares them. */
class PipelineComponentsTest {

    private static List<String> split(PreTokenizer preTokenizer, String text, boolean atStart) {
        List<PreTokenizer.Word> out = new ArrayList<>();
        preTokenizer.split(new PreTokenizer.Word(text, atStart), out);
        return out.stream().map(PreTokenizer.Word::text).toList();
    }

    private static PreTokenizer preTokenizer(String json) {
        return TokenizerJsonReader.preTokenizer(node(json), "pre_tokenizer");
    }

    @Test
    void splitBehavioursMatchTheTokenizersDocumentation() {
        String text = "the-final--countdown";
        String split =
                "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"invert\":false,\"behavior\":";

        assertEquals(
                List.of("the", "final", "countdown"),
                split(preTokenizer(split + "\"Removed\"}"), text, true));
        assertEquals(
                List.of("the", "-", "final", "-", "-", "countdown"),
                split(preTokenizer(split + "\"Isolated\"}"), text, true));
        assertEquals(
                List.of("the-", "final-", "-", "countdown"),
                split(preTokenizer(split + "\"MergedWithPrevious\"}"), text, true));
        assertEquals(
                List.of("the", "-final", "-", "-countdown"),
                split(preTokenizer(split + "\"MergedWithNext\"}"), text, true));
        assertEquals(
                List.of("the", "-", "final", "--", "countdown"),
                split(preTokenizer(split + "\"Contiguous\"}"), text, true));
    }

    @Test
    void splitWithRegexAndInvert() {
        PreTokenizer words =
                preTokenizer(
                        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+\"},\"behavior\":\"Removed\",\"invert\":true}");
        PreTokenizer spaces =
                preTokenizer(
                        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"behavior\":\"Removed\",\"invert\":false}");

        assertEquals(List.of("Hello", "wörld"), split(words, "Hello, wörld!", true));
        assertEquals(
                List.of("Hello,", "wörld!"),
                split(spaces, "Hello,\u00A0 wörld!", true)); // Unicode \s, as in Oniguruma
    }

    @Test
    void metaspacePrependSchemes() {
        String base =
                "{\"type\":\"Metaspace\",\"replacement\":\"" + MARK + "\",\"prepend_scheme\":";

        assertEquals(
                List.of(MARK + "Hey", MARK + "friend"),
                split(preTokenizer(base + "\"always\",\"split\":true}"), "Hey friend", false));
        assertEquals(
                List.of(MARK + "Hey", MARK + "friend"),
                split(preTokenizer(base + "\"first\",\"split\":true}"), "Hey friend", true));
        assertEquals(
                List.of("Hey", MARK + "friend"),
                split(preTokenizer(base + "\"first\",\"split\":true}"), "Hey friend", false));
        assertEquals(
                List.of("Hey", MARK + "friend"),
                split(preTokenizer(base + "\"never\",\"split\":true}"), "Hey friend", true));
        assertEquals(
                List.of(MARK + "Hey" + MARK + "friend"),
                split(preTokenizer(base + "\"always\",\"split\":false}"), "Hey friend", true));
    }

    @Test
    void metaspaceFirstOnlyPrependsAtTheStartOfTheInput() {
        TokenizerJson json = TokenizerJson.gemma();
        json.normalizer = null;
        json.merge(MARK, "h").merge(MARK + "h", "i");
        json.preTokenizer =
                node(
                        "{\"type\":\"Metaspace\",\"replacement\":\""
                                + MARK
                                + "\",\"prepend_scheme\":\"first\",\"split\":true}");
        json.decoder =
                node(
                        "{\"type\":\"Metaspace\",\"replacement\":\""
                                + MARK
                                + "\",\"prepend_scheme\":\"first\",\"split\":true}");
        Tokenizer t = json.build();

        assertEquals(List.of(MARK + "hi", MARK + "hi"), pieces(t, "hi hi"));
        assertEquals(List.of("<bos>", "h", "i", MARK + "hi"), pieces(t, "<bos>hi hi"));
        assertEquals("hi hi", t.decode(t.encode("hi hi")));
    }

    @Test
    void llamaStylePrependAndStripRoundTrip() {
        TokenizerJson json = TokenizerJson.gemma();
        json.merge(MARK, "h").merge(MARK + "h", "i");
        json.normalizer =
                node(
                        "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\""
                                + MARK
                                + "\"},"
                                + "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\""
                                + MARK
                                + "\"}]}");
        json.preTokenizer = null;
        json.decoder =
                node(
                        "{\"type\":\"Sequence\",\"decoders\":["
                                + "{\"type\":\"Replace\",\"pattern\":{\"String\":\""
                                + MARK
                                + "\"},\"content\":\" \"},"
                                + "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}");
        Tokenizer t = json.build();

        assertEquals(List.of(MARK + "hi", MARK + "hi"), pieces(t, "hi hi"));
        assertEquals(
                List.of(MARK + "hi", "<bos>", MARK + "hi"),
                pieces(t, "hi<bos>hi")); // Prepend applies to each stretch
        assertEquals("hi hi", t.decode(t.encode("hi hi")));
        assertEquals(
                "  hi", t.decode(t.encode("  hi"))); // Strip removes only the space Prepend added
    }

    @Test
    void unicodeNormalizationForms() {
        TokenizerJson nfc = TokenizerJson.gemma();
        nfc.pieces("é", "e");
        nfc.normalizer = node("{\"type\":\"NFC\"}");
        TokenizerJson nfkc = TokenizerJson.gemma();
        nfkc.merge("f", "i");
        nfkc.normalizer = node("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKC\"}]}");

        assertEquals(List.of("é"), pieces(nfc.build(), "e\u0301"));
        assertEquals(List.of("fi"), pieces(nfkc.build(), "\uFB01"));
    }

    @Test
    void replaceWithRegex() {
        TokenizerJson json = TokenizerJson.gemma();
        json.pieces("a", "b");
        json.normalizer =
                node(
                        "{\"type\":\"Sequence\",\"normalizers\":["
                                + "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\" \"},"
                                + "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\""
                                + MARK
                                + "\"}]}");

        assertEquals(List.of("a", MARK, "b"), pieces(json.build(), "a     b"));
    }

    @Test
    void invalidByteRunsDecodeToOneReplacementCharacterPerByte() {
        Tokenizer t = TokenizerJson.gemma().build();
        int e2 = t.tokenId("<0xE2>").getAsInt();
        int x82 = t.tokenId("<0x82>").getAsInt();
        int xac = t.tokenId("<0xAC>").getAsInt();
        int a = t.tokenId("<0x41>").getAsInt();
        int bos = t.tokenId("<bos>").getAsInt();

        assertEquals("€", t.decode(new int[] {e2, x82, xac}));
        assertEquals("\uFFFD\uFFFD", t.decode(new int[] {e2, x82}));
        assertEquals(
                "\uFFFD\uFFFD",
                t.decode(new int[] {a, e2})); // the whole run is invalid, as in tokenizers
        assertEquals("A<bos>\uFFFD", t.decode(new int[] {a, bos, e2}));
    }

    @Test
    void withoutADecoderPiecesAreJoinedWithSpaces() {
        TokenizerJson json = new TokenizerJson().merge("a", "b");
        json.pieces("c");
        Tokenizer t = json.build();

        assertEquals("ab c ab", t.decode(t.encode("abcab")));
    }

    @Test
    void metaspaceDecoderWithNeverKeepsTheLeadingSpace() {
        TokenizerJson json = TokenizerJson.gemma();
        json.merge(MARK, "h");
        json.decoder =
                node(
                        "{\"type\":\"Metaspace\",\"replacement\":\""
                                + MARK
                                + "\",\"prepend_scheme\":\"never\",\"split\":true}");
        Tokenizer t = json.build();

        assertEquals(" h h", t.decode(t.encode(" h h")));
    }

    @Test
    void stripBeforeFuseStripsEachPiece() {
        TokenizerJson json = TokenizerJson.gemma();
        json.pieces("x").merge(MARK, "x").merge(MARK + "x", MARK);
        json.decoder =
                node(
                        "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Strip\",\"content\":\""
                                + MARK
                                + "\",\"start\":1,\"stop\":1},"
                                + "{\"type\":\"Fuse\"}]}");
        Tokenizer t = json.build();

        assertEquals(List.of(MARK + "x", MARK + "x", MARK + "x"), pieces(t, " x x x"));
        assertEquals("xxx", t.decode(t.encode(" x x x")));
    }
}
