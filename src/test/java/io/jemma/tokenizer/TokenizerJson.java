package io.jemma.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Builds small tokenizer.json fixtures the way Hugging Face writes them. */
final class TokenizerJson {

    static final ObjectMapper MAPPER = new ObjectMapper();
    static final String MARK = "\u2581";

    final Map<String, Integer> vocab = new LinkedHashMap<>();
    final List<String[]> merges = new ArrayList<>();
    final ArrayNode addedTokens = MAPPER.createArrayNode();
    final ObjectNode model = MAPPER.createObjectNode();
    Object normalizer;
    Object preTokenizer;
    Object decoder;
    boolean legacyMerges;

    TokenizerJson() {
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
    }

    /** The Gemma setup: specials, 256 byte pieces, Replace(" " -> U+2581), Split(" ") and Replace/ByteFallback/Fuse decoding. */
    static TokenizerJson gemma() {
        TokenizerJson t = new TokenizerJson();
        for (String s : SyntheticTokenizers.SPECIALS) {
            t.special(s);
        }
        for (int b = 0; b < 256; b++) {
            t.piece(String.format("<0x%02X>", b));
        }
        t.piece(MARK);
        t.model.put("unk_token", "<unk>");
        t.model.put("fuse_unk", true);
        t.model.put("byte_fallback", true);
        t.normalizer = replace(" ", MARK);
        t.preTokenizer =
                node(
                        "{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"MergedWithPrevious\",\"invert\":false}");
        t.decoder =
                node(
                        "{\"type\":\"Sequence\",\"decoders\":["
                                + "{\"type\":\"Replace\",\"pattern\":{\"String\":\""
                                + MARK
                                + "\"},\"content\":\" \"},"
                                + "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}");
        return t;
    }

    static ObjectNode node(String json) {
        try {
            return (ObjectNode) MAPPER.readTree(json);
        } catch (Exception e) {
            throw new IllegalArgumentException(json, e);
        }
    }

    static ObjectNode replace(String literal, String content) {
        ObjectNode n = MAPPER.createObjectNode();
        n.put("type", "Replace");
        n.putObject("pattern").put("String", literal);
        n.put("content", content);
        return n;
    }

    int piece(String piece) {
        return vocab.computeIfAbsent(piece, p -> vocab.size());
    }

    /** Adds a merge rule (rank = order of calls) and the merged piece. */
    TokenizerJson merge(String left, String right) {
        piece(left);
        piece(right);
        piece(left + right);
        merges.add(new String[] {left, right});
        return this;
    }

    TokenizerJson pieces(String... pieces) {
        for (String p : pieces) {
            piece(p);
        }
        return this;
    }

    int special(String content) {
        return added(content, true, false, false, false, false);
    }

    int added(
            String content,
            boolean special,
            boolean normalized,
            boolean singleWord,
            boolean lstrip,
            boolean rstrip) {
        int id = piece(content);
        addedTokens
                .addObject()
                .put("id", id)
                .put("content", content)
                .put("single_word", singleWord)
                .put("lstrip", lstrip)
                .put("rstrip", rstrip)
                .put("normalized", normalized)
                .put("special", special);
        return id;
    }

    ObjectNode toNode() {
        ObjectNode root = MAPPER.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        root.set("added_tokens", addedTokens);
        root.set("normalizer", normalizer == null ? null : MAPPER.valueToTree(normalizer));
        root.set("pre_tokenizer", preTokenizer == null ? null : MAPPER.valueToTree(preTokenizer));
        root.putNull("post_processor");
        root.set("decoder", decoder == null ? null : MAPPER.valueToTree(decoder));
        ObjectNode m = model.deepCopy();
        ObjectNode v = m.putObject("vocab");
        vocab.forEach(v::put);
        ArrayNode mergeArray = m.putArray("merges");
        for (String[] pair : merges) {
            if (legacyMerges) {
                mergeArray.add(pair[0] + " " + pair[1]);
            } else {
                mergeArray.addArray().add(pair[0]).add(pair[1]);
            }
        }
        root.set("model", m);
        return root;
    }

    String json() {
        return toNode().toString();
    }

    Tokenizer build() {
        return Tokenizer.fromJson(json(), null);
    }

    Tokenizer build(String configJson) {
        return Tokenizer.fromJson(json(), configJson);
    }
}
