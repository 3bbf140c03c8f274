package io.jemma.tokenizer;

import static io.jemma.tokenizer.BpeEncodingTest.pieces;
import static io.jemma.tokenizer.TokenizerJson.MARK;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.util.List;

/** Added and special tokens are cut out of the raw text before BPE and never split. */
class AddedTokensTest {

    private static TokenizerJson gemmaWithWords() {
        TokenizerJson json = TokenizerJson.gemma();
        json.merge("u", "s").merge("us", "e").merge("use", "r").merge(MARK, "hi").merge("h", "i");
        return json;
    }

    @Test
    void specialTokensInTheTextBecomeTheirIds() {
        Tokenizer t = gemmaWithWords().build();

        assertEquals(
                List.of("<bos>", "<|turn>", "user", "<0x0A>", "hi", "<turn|>"),
                pieces(t, "<bos><|turn>user\nhi<turn|>"));
        assertEquals(2, t.encode("<bos>")[0]);
    }

    @Test
    void textAroundSpecialTokensIsEncodedSeparately() {
        TokenizerJson json = gemmaWithWords();
        json.merge("i", "<");
        Tokenizer t = json.build();

        // "i<" would merge if the special token were ordinary text.
        assertEquals(List.of("hi", "<bos>", MARK + "hi"), pieces(t, "hi<bos> hi"));
    }

    @Test
    void theLongestAddedTokenStartingAtAPlaceWins() {
        TokenizerJson json = gemmaWithWords();
        json.special("<start>");
        json.special("<start_of_turn>");
        Tokenizer t = json.build();

        assertEquals(List.of("<start_of_turn>", "user"), pieces(t, "<start_of_turn>user"));
        assertEquals(List.of("<start>", "user"), pieces(t, "<start>user"));
        assertEquals("<start>", pieces(t, "<start>_of").getFirst());
    }

    @Test
    void specialTokensCanBeTreatedAsPlainText() {
        Tokenizer t = gemmaWithWords().build();

        int[] asText = t.encode("<bos>hi", false);
        assertNotEquals(2, asText[0]);
        assertEquals("<bos>hi", t.decode(asText));
        assertEquals(List.of("<bos>", "hi"), pieces(t, "<bos>hi"));
    }

    @Test
    void decodeKeepsSpecialTokensUnlessAskedToSkipThem() {
        Tokenizer t = gemmaWithWords().build();
        int[] ids = t.encode("<bos><|turn>user\nhi<turn|>");

        assertEquals("<bos><|turn>user\nhi<turn|>", t.decode(ids));
        assertEquals("user\nhi", t.decode(ids, true));
    }

    @Test
    void lstripAndRstripSwallowNeighbouringWhitespace() {
        TokenizerJson json = gemmaWithWords();
        json.added("[L]", true, false, false, true, false);
        json.added("[R]", true, false, false, false, true);
        Tokenizer t = json.build();

        assertEquals(List.of("hi", "[L]", "hi"), pieces(t, "hi  \t [L]hi"));
        assertEquals(List.of("hi", "[R]", "hi"), pieces(t, "hi[R] \n hi"));
        assertEquals(List.of("hi", MARK, "[R]", "hi"), pieces(t, "hi [R]hi"));
    }

    @Test
    void singleWordTokensOnlyMatchStandingAlone() {
        TokenizerJson json = gemmaWithWords();
        int cat = json.added("cat", false, false, true, false, false);
        Tokenizer t = json.build();

        assertEquals(List.of("cat"), pieces(t, "cat"));
        assertTrue(contains(t.encode("hi cat."), cat));
        assertFalse(contains(t.encode("concatenate"), cat));
        assertFalse(contains(t.encode("cats"), cat));
    }

    @Test
    void normalizedAddedTokensAreMatchedInNormalizedText() {
        TokenizerJson json = gemmaWithWords();
        int id = json.added("hi user", false, true, false, false, false);
        Tokenizer t = json.build();

        // The token is matched as "hi▁user" after spaces became U+2581, and that is its piece text.
        assertEquals(
                List.of("hi", MARK + "hi", MARK, "hi" + MARK + "user"), pieces(t, "hi hi hi user"));
        assertEquals("hi" + MARK + "user", t.piece(id));
        assertEquals("hi hi hi user", t.decode(t.encode("hi hi hi user")));
    }

    @Test
    void tokenizerConfigCanDeclareMoreAddedTokens() {
        TokenizerJson json = gemmaWithWords();
        int newId = json.vocab.size() + 10;
        String config =
                "{\"added_tokens_decoder\": {\""
                        + newId
                        + "\": {\"content\": \"<tool>\", \"special\": true,"
                        + " \"normalized\": false, \"lstrip\": false, \"rstrip\": false, \"single_word\": false},"
                        + " \"2\": {\"content\": \"<bos>\", \"special\": true}}}";
        Tokenizer t = json.build(config);

        assertEquals(List.of("hi", "<tool>", "hi"), pieces(t, "hi<tool>hi"));
        assertEquals(newId + 1, t.vocabSize());
        assertTrue(t.isSpecial(newId));
        assertEquals("hihi", t.decode(t.encode("hi<tool>hi"), true));
    }

    private static boolean contains(int[] ids, int id) {
        for (int i : ids) {
            if (i == id) {
                return true;
            }
        }
        return false;
    }
}
