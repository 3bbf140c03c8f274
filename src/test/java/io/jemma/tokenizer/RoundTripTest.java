package io.jemma.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Random;
import org.junit.jupiter.api.Test;

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
    String[][] crossing = {{"s", mark + "the"}, {".", mark}, {",", mark}, {"e", mark}, {"<0x80>", mark}};
    for (String[] m : crossing) {
      if (vocab.has(m[0]) && vocab.has(m[1]) && !vocab.has(m[0] + m[1])) {
        vocab.put(m[0] + m[1], vocab.size());
        merges.insert(0, TokenizerJson.MAPPER.createArrayNode().add(m[0]).add(m[1]));
      }
    }
    assertAgreesWithNaiveBpe(root.toString(), 0xCAFE);
  }

  private static void assertAgreesWithNaiveBpe(String json, long seed) {
    Tokenizer fast = Tokenizer.fromJson(json, null);
    ReferenceBpe naive = new ReferenceBpe(json);
    Random random = new Random(seed);
    for (int i = 0; i < 400; i++) {
      String text = random.nextBoolean()
          ? TestTokenizers.englishText(40 + random.nextInt(300), random.nextLong())
          : RandomText.next(random, 60).replace("<bos>", "").replace('x', '\u2581');
      assertArrayEquals(naive.encode(text), fast.encode(text), () -> "ids of " + Json.quote(text));
    }
  }
}
