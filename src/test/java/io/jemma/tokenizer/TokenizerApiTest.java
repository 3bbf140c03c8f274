package io.jemma.tokenizer;

import static io.jemma.tokenizer.TokenizerJson.MARK;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalInt;

/** Vocabulary lookups and what tokenizer_config.json and the template files contribute. */
class TokenizerApiTest {

    private static final String CONFIG =
            "{\"bos_token\": \"<bos>\", \"eos_token\": {\"content\": \"<eos>\", \"special\": true},"
                    + " \"chat_template\": \"{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}\"}";

    @Test
    void piecesAndIdsMapBothWays() {
        TokenizerJson json = TokenizerJson.gemma();
        json.merge(MARK, "a");
        Tokenizer t = json.build();

        assertEquals(json.vocab.size(), t.vocabSize());
        int id = t.tokenId(MARK + "a").getAsInt();
        assertEquals(MARK + "a", t.piece(id));
        assertEquals(OptionalInt.of(2), t.tokenId("<bos>"));
        assertEquals("<0x0A>", t.piece(t.tokenId("<0x0A>").getAsInt()));
        assertEquals(OptionalInt.empty(), t.tokenId("not a piece"));
        assertThrows(IllegalArgumentException.class, () -> t.piece(t.vocabSize()));
        assertThrows(IllegalArgumentException.class, () -> t.piece(-1));
    }

    @Test
    void onlyAddedTokensMarkedSpecialAreSpecial() {
        TokenizerJson json = TokenizerJson.gemma();
        int plain = json.added("<plain>", false, false, false, false, false);
        Tokenizer t = json.build();

        assertTrue(t.isSpecial(t.tokenId("<bos>").getAsInt()));
        assertTrue(t.isSpecial(t.tokenId("<turn|>").getAsInt()));
        assertFalse(t.isSpecial(plain));
        assertFalse(t.isSpecial(t.tokenId("<0x41>").getAsInt()));
        assertFalse(t.isSpecial(-5));
        assertFalse(t.isSpecial(1 << 20));
    }

    @Test
    void bosEosAndTemplateComeFromTheConfig() {
        Tokenizer t = TokenizerJson.gemma().build(CONFIG);
        Tokenizer bare = TokenizerJson.gemma().build();

        assertEquals(OptionalInt.of(2), t.bosId());
        assertEquals(OptionalInt.of(1), t.eosId());
        assertEquals(Optional.of("<bos>"), t.bosToken());
        assertTrue(t.chatTemplate().orElseThrow().startsWith("{{ bos_token }}"));
        assertEquals(OptionalInt.empty(), bare.bosId());
        assertEquals(Optional.empty(), bare.chatTemplate());
    }

    @Test
    void namedTemplatesUseTheDefaultOne() {
        String config =
                "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D\"}]}";
        Tokenizer t = TokenizerJson.gemma().build(config);

        assertEquals(Optional.of("D"), t.chatTemplate());
        assertEquals(Optional.of("T"), t.chatTemplate("tool_use"));
    }

    @Test
    void loadsACheckpointDirectory(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), TokenizerJson.gemma().json());
        Tokenizer withoutConfig = Tokenizer.load(dir);
        assertEquals(Optional.empty(), withoutConfig.chatTemplate());

        Files.writeString(dir.resolve("tokenizer_config.json"), CONFIG);
        assertTrue(Tokenizer.load(dir).chatTemplate().orElseThrow().startsWith("{{ bos_token }}"));

        Files.writeString(dir.resolve("chat_template.json"), "{\"chat_template\": \"from json\"}");
        assertEquals(Optional.of("from json"), Tokenizer.load(dir).chatTemplate());

        Files.writeString(dir.resolve("chat_template.jinja"), "from jinja");
        Tokenizer t = Tokenizer.load(dir);
        assertEquals(Optional.of("from jinja"), t.chatTemplate());
        assertEquals(OptionalInt.of(2), t.bosId());
    }

    @Test
    void tokenizersAreSafeToShareBetweenThreads() throws Exception {
        Tokenizer t = TestTokenizers.english();
        String[] texts = new String[16];
        int[][] expected = new int[texts.length][];
        for (int i = 0; i < texts.length; i++) {
            texts[i] = TestTokenizers.englishText(5000, i);
            expected[i] = Tokenizer.fromJson(TestTokenizers.englishJson(), null).encode(texts[i]);
        }
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(4)) {
            var futures = new java.util.ArrayList<java.util.concurrent.Future<Boolean>>();
            for (int round = 0; round < 8; round++) {
                for (int i = 0; i < texts.length; i++) {
                    int k = i;
                    futures.add(
                            pool.submit(
                                    () ->
                                            java.util.Arrays.equals(
                                                    expected[k], t.encode(texts[k]))));
                }
            }
            for (var f : futures) {
                assertTrue(f.get());
            }
        }
    }
}
