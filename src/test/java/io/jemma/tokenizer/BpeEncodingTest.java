package io.jemma.tokenizer;

import static io.jemma.tokenizer.TokenizerJson.MARK;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

/** BPE merging, byte fallback and unknown characters, checked through encode/decode. */
class BpeEncodingTest {

    /** The pieces of the ids, for readable assertions. */
    static List<String> pieces(Tokenizer t, String text) {
        return Arrays.stream(t.encode(text)).mapToObj(t::piece).toList();
    }

    @Test
    void lowerRankMergeWinsOverLeftmostPair() {
        Tokenizer bcFirst = new TokenizerJson().merge("b", "c").merge("a", "b").build();
        Tokenizer abFirst = new TokenizerJson().merge("a", "b").merge("b", "c").build();

        assertEquals(List.of("a", "bc"), pieces(bcFirst, "abc"));
        assertEquals(List.of("ab", "c"), pieces(abFirst, "abc"));
    }

    @Test
    void equalRankPairsMergeLeftmostFirst() {
        Tokenizer t = new TokenizerJson().merge("a", "a").build();

        assertEquals(List.of("aa", "a"), pieces(t, "aaa"));
        assertEquals(List.of("aa", "aa"), pieces(t, "aaaa"));
    }

    @Test
    void mergedPiecesKeepMergingByRank() {
        TokenizerJson json = TokenizerJson.gemma();
        json.merge("h", "e")
                .merge("l", "l")
                .merge("he", "ll")
                .merge("hell", "o")
                .merge(MARK, "w")
                .merge("o", "r")
                .merge(MARK + "w", "or")
                .merge("l", "d")
                .merge(MARK + "wor", "ld");
        Tokenizer t = json.build();

        assertEquals(List.of("hello", MARK + "world"), pieces(t, "hello world"));
        assertEquals(List.of("hell", MARK + "world"), pieces(t, "hell world"));
        assertEquals("hello world", t.decode(t.encode("hello world")));
    }

    @Test
    void legacyStringMergesMeanTheSameAsPairs() {
        TokenizerJson pairs = new TokenizerJson().merge("x", "y").merge("xy", "z").merge("y", "z");
        TokenizerJson legacy = new TokenizerJson().merge("x", "y").merge("xy", "z").merge("y", "z");
        legacy.legacyMerges = true;

        assertArrayEquals(pairs.build().encode("xyzyzxy"), legacy.build().encode("xyzyzxy"));
        assertEquals(List.of("xyz", "yz", "xy"), pieces(legacy.build(), "xyzyzxy"));
    }

    @Test
    void noPrefixSpaceIsAddedAndSpacesAreKept() {
        TokenizerJson json = TokenizerJson.gemma();
        json.merge("h", "i").merge(MARK, "hi").merge(MARK, MARK);
        Tokenizer t = json.build();

        assertEquals(List.of("hi"), pieces(t, "hi")); // not "▁hi": no prefix space
        assertEquals(List.of(MARK + "hi", MARK + MARK, MARK), pieces(t, " hi   "));
        assertEquals(" hi   ", t.decode(t.encode(" hi   ")));
    }

    @Test
    void unknownCharactersFallBackToUtf8BytePieces() {
        Tokenizer t = TokenizerJson.gemma().merge("a", "b").build();

        assertEquals(List.of("<0xF0>", "<0x9F>", "<0x98>", "<0x80>"), pieces(t, "😀"));
        assertEquals(List.of("<0xE8>", "<0xAA>", "<0x9E>"), pieces(t, "語"));
        assertEquals(List.of("ab", "<0xCC>", "<0x81>"), pieces(t, "ab\u0301"));
        assertEquals(List.of("<0xE2>", "<0x82>", "<0xAC>", "ab"), pieces(t, "€ab"));
        for (String s :
                List.of("😀", "語", "ab\u0301", "€ab", "👩‍👩‍👧 家族", "e\u0301\u0302\u0303")) {
            assertEquals(s, t.decode(t.encode(s)));
        }
    }

    @Test
    void characterInTheVocabularyIsNotSplitIntoBytes() {
        TokenizerJson json = TokenizerJson.gemma();
        json.pieces("語");
        Tokenizer t = json.build();

        assertEquals(List.of("語", "<0xE6>", "<0x97>", "<0xA5>"), pieces(t, "語日"));
    }

    @Test
    void withoutByteFallbackUnknownCharactersBecomeUnk() {
        TokenizerJson json = new TokenizerJson().merge("a", "b");
        json.pieces("<unk>");
        json.model.put("unk_token", "<unk>");
        Tokenizer separate = json.build();
        json.model.put("fuse_unk", true);
        Tokenizer fused = json.build();

        assertEquals(List.of("ab", "<unk>", "<unk>", "ab", "<unk>"), pieces(separate, "abxyabz"));
        assertEquals(List.of("ab", "<unk>", "ab", "<unk>"), pieces(fused, "abxyabz"));
    }

    @Test
    void byteFallbackNeedsEveryBytePiece() {
        TokenizerJson json = new TokenizerJson();
        json.pieces("a", "<unk>", "<0xC3>");
        json.model.put("unk_token", "<unk>");
        json.model.put("byte_fallback", true);
        Tokenizer t = json.build();

        assertEquals(List.of("a", "<unk>"), pieces(t, "aé")); // é is C3 A9 and <0xA9> is missing
    }

    @Test
    void withNeitherUnkNorBytesUnknownCharactersAreDropped() {
        Tokenizer t = new TokenizerJson().merge("a", "b").build();

        assertEquals(List.of("ab", "ab"), pieces(t, "abéab"));
    }

    @Test
    void ignoreMergesTakesWholeWordsFromTheVocabulary() {
        TokenizerJson json = new TokenizerJson().merge("a", "b");
        json.pieces("c", "abc", "ca");
        Tokenizer merging = json.build();
        json.model.put("ignore_merges", true);
        Tokenizer ignoring = json.build();

        assertEquals(List.of("ab", "c"), pieces(merging, "abc"));
        assertEquals(List.of("abc"), pieces(ignoring, "abc"));
        assertEquals(List.of("c", "ab"), pieces(ignoring, "cab")); // not a piece: merged as usual
    }

    @Test
    void continuingSubwordPrefixAndEndOfWordSuffixFollowTokenizers() {
        TokenizerJson prefixed = new TokenizerJson();
        prefixed.pieces("a", "##b", "##c", "ab", "abc");
        prefixed.merges.add(new String[] {"a", "##b"});
        prefixed.merges.add(new String[] {"ab", "##c"});
        prefixed.model.put("continuing_subword_prefix", "##");
        assertEquals(List.of("abc"), pieces(prefixed.build(), "abc"));
        assertEquals(List.of("ab"), pieces(prefixed.build(), "ab"));

        TokenizerJson suffixed = new TokenizerJson();
        suffixed.pieces("a", "b", "b</w>", "ab</w>");
        suffixed.merges.add(new String[] {"a", "b</w>"});
        suffixed.model.put("end_of_word_suffix", "</w>");
        assertEquals(List.of("ab</w>"), pieces(suffixed.build(), "ab"));
        assertEquals(List.of("b", "b</w>"), pieces(suffixed.build(), "bb"));
    }

    @Test
    void repeatedEncodingGivesTheSameIds() {
        Tokenizer t = TestTokenizers.english();
        String text = "the quick people said that the water was good, the end.";

        int[] first = t.encode(text);
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(first, t.encode(text));
        }
    }
}
