package io.jemma.tokenizer;

import static io.jemma.tokenizer.TokenizerJson.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;

/** Broken files give a TokenizerException naming the file and the problem, never another failure. */
class MalformedFilesTest {

    private static ObjectNode valid() {
        TokenizerJson json = TokenizerJson.gemma();
        json.merge("a", "b").merge("ab", "c");
        return json.toNode();
    }

    /** Loads a valid file changed by {@code edit} and returns the message of the expected TokenizerException. */
    private static String failure(Consumer<ObjectNode> edit) {
        ObjectNode root = valid();
        edit.accept(root);
        return failure(root.toString());
    }

    private static String failure(String json) {
        TokenizerException e =
                assertThrows(TokenizerException.class, () -> Tokenizer.fromJson(json, null));
        assertTrue(e.getMessage().startsWith("tokenizer.json: "), e.getMessage());
        return e.getMessage();
    }

    private static void assertMentions(String message, String... parts) {
        for (String part : parts) {
            assertTrue(message.contains(part), () -> "\"" + message + "\" should mention " + part);
        }
    }

    private static ObjectNode model(ObjectNode root) {
        return (ObjectNode) root.get("model");
    }

    @Test
    void notJson() {
        assertMentions(failure("{\"model\": {\"type\": \"BPE\", "), "not valid JSON");
        assertMentions(failure("just text"), "not valid JSON");
        assertMentions(failure(""), "empty");
        assertMentions(failure("[1, 2]"), "the top level must be an object");
    }

    @Test
    void deeplyNestedJsonIsRejectedWithoutCrashing() {
        String deep = "[".repeat(100_000) + "]".repeat(100_000);
        assertMentions(failure("{\"normalizer\": " + deep + "}"), "not valid JSON");
    }

    @Test
    void missingOrUnsupportedModel() {
        assertMentions(failure(r -> r.remove("model")), "model is missing");
        assertMentions(
                failure(r -> model(r).put("type", "Unigram")), "\"Unigram\"", "not supported");
        assertMentions(failure(r -> model(r).put("type", "WordPiece")), "\"WordPiece\"");
        assertMentions(failure(r -> model(r).put("dropout", 0.1)), "dropout");
    }

    @Test
    void malformedVocabulary() {
        assertMentions(failure(r -> model(r).putArray("vocab")), "model.vocab must be an object");
        assertMentions(
                failure(r -> ((ObjectNode) r.get("model").get("vocab")).put("zz", "seven")),
                "model.vocab[\"zz\"] must be an integer");
        assertMentions(
                failure(r -> ((ObjectNode) r.get("model").get("vocab")).put("zz", -3)),
                "id -3",
                "out of range");
        assertMentions(
                failure(r -> ((ObjectNode) r.get("model").get("vocab")).put("zz", 2_000_000_000)),
                "id 2000000000",
                "out of range");
        assertMentions(
                failure(r -> ((ObjectNode) r.get("model").get("vocab")).put("zz", 1.5)),
                "must be an integer");
        assertMentions(
                failure(r -> ((ObjectNode) r.get("model").get("vocab")).put("zz", 3)),
                "both have id 3",
                "\"zz\"");
    }

    @Test
    void mergesNamingUnknownPieces() {
        assertMentions(
                failure(
                        r ->
                                ((ArrayNode) r.get("model").get("merges"))
                                        .addArray()
                                        .add("q")
                                        .add("b")),
                "\"q\"",
                "not in model.vocab");
        assertMentions(
                failure(
                        r ->
                                ((ArrayNode) r.get("model").get("merges"))
                                        .addArray()
                                        .add("b")
                                        .add("a")),
                "makes \"ba\"",
                "not in model.vocab");
        assertMentions(
                failure(r -> ((ArrayNode) r.get("model").get("merges")).add("a b c")),
                "model.merges[2]",
                "two pieces");
        assertMentions(
                failure(r -> ((ArrayNode) r.get("model").get("merges")).addArray().add("a")),
                "pair of pieces");
        assertMentions(
                failure(r -> ((ArrayNode) r.get("model").get("merges")).add(7)), "model.merges[2]");
        assertMentions(
                failure(r -> model(r).put("merges", "a b")), "model.merges must be an array");
    }

    @Test
    void unknownPieceForUnk() {
        assertMentions(failure(r -> model(r).put("unk_token", "<oov>")), "unk_token \"<oov>\"");
    }

    @Test
    void unsupportedComponents() {
        assertMentions(
                failure(r -> r.set("normalizer", node("{\"type\":\"Lowercase\"}"))),
                "normalizer.type \"Lowercase\" is not supported");
        assertMentions(
                failure(
                        r ->
                                r.set(
                                        "normalizer",
                                        node(
                                                "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"BertNormalizer\"}]}"))),
                "normalizer.normalizers[0].type \"BertNormalizer\"");
        assertMentions(
                failure(
                        r ->
                                r.set(
                                        "pre_tokenizer",
                                        node(
                                                "{\"type\":\"ByteLevel\",\"add_prefix_space\":false}"))),
                "pre_tokenizer.type \"ByteLevel\" is not supported");
        assertMentions(
                failure(r -> r.set("decoder", node("{\"type\":\"WordPiece\",\"prefix\":\"##\"}"))),
                "decoder.type \"WordPiece\"");
        assertMentions(
                failure(r -> r.set("decoder", node("{\"kind\":\"Fuse\"}"))),
                "decoder.type must be a string");
    }

    @Test
    void malformedComponentSettings() {
        assertMentions(
                failure(
                        r ->
                                r.set(
                                        "normalizer",
                                        node(
                                                "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"(\"},\"content\":\"\"}"))),
                "invalid regex \"(\"");
        assertMentions(
                failure(
                        r ->
                                r.set(
                                        "normalizer",
                                        node(
                                                "{\"type\":\"Replace\",\"pattern\":{\"Glob\":\"*\"},\"content\":\"\"}"))),
                "normalizer.pattern must be");
        assertMentions(
                failure(
                        r ->
                                r.set(
                                        "pre_tokenizer",
                                        node(
                                                "{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Sideways\",\"invert\":false}"))),
                "\"Sideways\"");
        assertMentions(
                failure(
                        r ->
                                r.set(
                                        "pre_tokenizer",
                                        node("{\"type\":\"Metaspace\",\"replacement\":\"ab\"}"))),
                "single character");
        assertMentions(
                failure(
                        r ->
                                r.set(
                                        "pre_tokenizer",
                                        node(
                                                "{\"type\":\"Metaspace\",\"replacement\":\"_\",\"prepend_scheme\":\"sometimes\"}"))),
                "\"sometimes\"");
        assertMentions(
                failure(
                        r ->
                                r.set(
                                        "decoder",
                                        node(
                                                "{\"type\":\"Strip\",\"content\":\" \",\"start\":-1,\"stop\":0}"))),
                "negative");
    }

    @Test
    void addedTokensWithBadIds() {
        assertMentions(
                failure(
                        r ->
                                ((ArrayNode) r.get("added_tokens"))
                                        .addObject()
                                        .put("id", 5)
                                        .put("content", "<new>")),
                "both have id 5");
        assertMentions(
                failure(
                        r ->
                                ((ArrayNode) r.get("added_tokens"))
                                        .addObject()
                                        .put("id", -1)
                                        .put("content", "<new>")),
                "out of range");
        assertMentions(
                failure(
                        r ->
                                ((ArrayNode) r.get("added_tokens"))
                                        .addObject()
                                        .put("content", "<new>")),
                "added_tokens[8].id must be an integer");
        assertMentions(
                failure(
                        r ->
                                ((ArrayNode) r.get("added_tokens"))
                                        .addObject()
                                        .put("id", 900)
                                        .put("content", 3)),
                "content must be a string");
    }

    @Test
    void malformedTokenizerConfig() {
        String json = valid().toString();
        for (String[] c :
                new String[][] {
                    {"{\"bos_token\": 5}", "bos_token must be a string"},
                    {"{\"chat_template\": 12}", "chat_template must be an array"},
                    {
                        "{\"chat_template\": [{\"name\": \"default\"}]}",
                        "chat_template[0].template must be a string"
                    },
                    {
                        "{\"added_tokens_decoder\": {\"x\": {\"content\": \"<a>\"}}}",
                        "the key must be a token id"
                    },
                    {
                        "{\"added_tokens_decoder\": {\"3\": {\"content\": \"<new>\"}}}",
                        "both have id 3"
                    },
                    {"{broken", "not valid JSON"},
                }) {
            TokenizerException e =
                    assertThrows(TokenizerException.class, () -> Tokenizer.fromJson(json, c[0]));
            assertTrue(e.getMessage().startsWith("tokenizer_config.json: "), e.getMessage());
            assertMentions(e.getMessage(), c[1]);
        }
    }

    @Test
    void filesInAModelDirectoryAreNamedWithTheirPath(@TempDir Path dir) throws IOException {
        TokenizerException missing =
                assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertMentions(missing.getMessage(), dir.resolve("tokenizer.json").toString(), "not found");

        Files.write(dir.resolve("tokenizer.json"), new byte[] {'{', (byte) 0xC3, '}'});
        assertMentions(
                assertThrows(TokenizerException.class, () -> Tokenizer.load(dir)).getMessage(),
                "tokenizer.json: not valid UTF-8");

        Files.writeString(dir.resolve("tokenizer.json"), valid().toString());
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": []}");
        assertMentions(
                assertThrows(TokenizerException.class, () -> Tokenizer.load(dir)).getMessage(),
                dir.resolve("tokenizer_config.json").toString(),
                "eos_token");

        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"<eos>\"}");
        assertEquals(1, Tokenizer.load(dir).eosId().getAsInt());
    }

    /**
     * Randomly damaged files: each either loads (and then encodes and decodes without failing) or
     * is rejected with a TokenizerException; nothing else may escape.
     */
    @Test
    void randomlyDamagedFilesLoadOrFailCleanly() {
        Random random = new Random(42);
        String validText = valid().toString();
        int loaded = 0;
        for (int round = 0; round < 1500; round++) {
            String text;
            if (round % 3 == 0) {
                StringBuilder s = new StringBuilder(validText);
                for (int k = 1 + random.nextInt(3); k > 0; k--) {
                    int at = random.nextInt(s.length());
                    switch (random.nextInt(3)) {
                        case 0 -> s.deleteCharAt(at);
                        case 1 -> s.insert(at, "{}[],:\"0-9a".charAt(random.nextInt(11)));
                        default -> s.setLength(at);
                    }
                }
                text = s.toString();
            } else {
                ObjectNode root = valid();
                List<JsonNode> parents = new ArrayList<>();
                collectContainers(root, parents);
                JsonNode parent = parents.get(random.nextInt(parents.size()));
                JsonNode replacement = randomValue(random);
                if (parent instanceof ObjectNode o && o.size() > 0) {
                    List<String> names = new ArrayList<>();
                    o.fieldNames().forEachRemaining(names::add);
                    o.set(names.get(random.nextInt(names.size())), replacement);
                } else if (parent instanceof ArrayNode a && a.size() > 0) {
                    a.set(random.nextInt(a.size()), replacement);
                }
                text = root.toString();
            }
            try {
                Tokenizer t = Tokenizer.fromJson(text, null);
                loaded++;
                int[] ids = t.encode("abc <bos> héllo 😀 ab");
                t.decode(ids);
                t.decode(ids, true);
                IncrementalDetokenizer d = t.newDetokenizer();
                for (int id : ids) {
                    d.push(id);
                }
                d.flush();
            } catch (TokenizerException expected) {
                assertTrue(
                        expected.getMessage().startsWith("tokenizer.json: "),
                        expected.getMessage());
            } catch (RuntimeException | Error e) {
                fail("damaged file gave " + e + " instead of a TokenizerException:\n" + text, e);
            }
        }
        assertTrue(loaded > 0, "some damage should be harmless");
    }

    private static void collectContainers(JsonNode node, List<JsonNode> out) {
        if (node.isContainerNode()) {
            out.add(node);
            node.forEach(child -> collectContainers(child, out));
        }
    }

    private static JsonNode randomValue(Random random) {
        return switch (random.nextInt(8)) {
            case 0 -> TokenizerJson.MAPPER.nullNode();
            case 1 -> TokenizerJson.MAPPER.getNodeFactory().numberNode(random.nextInt(600) - 100);
            case 2 -> TokenizerJson.MAPPER.getNodeFactory().numberNode(Integer.MAX_VALUE);
            case 3 ->
                    TokenizerJson.MAPPER
                            .getNodeFactory()
                            .textNode(random.nextBoolean() ? "a" : "Unknown");
            case 4 -> TokenizerJson.MAPPER.getNodeFactory().booleanNode(random.nextBoolean());
            case 5 -> TokenizerJson.MAPPER.createArrayNode().add("a").add("b");
            case 6 -> TokenizerJson.MAPPER.createObjectNode();
            default -> TokenizerJson.MAPPER.getNodeFactory().numberNode(2.5);
        };
    }
}
