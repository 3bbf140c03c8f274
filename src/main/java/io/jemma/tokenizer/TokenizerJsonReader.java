package io.jemma.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/** Reads Hugging Face's tokenizer.json into our components, rejecting what we do not implement. */
final class TokenizerJsonReader {

    /** The components of one tokenizer.json; added tokens still carry the ids the file declares. */
    record Parts(
            BpeModel model,
            Normalizer normalizer,
            PreTokenizer preTokenizer,
            Decoder decoder,
            List<AddedToken> addedTokens) {}

    private TokenizerJsonReader() {}

    static Parts read(String json, String source) {
        JsonNode root = Json.parse(json, source);
        try {
            Json.object(root, "the top level");
            return new Parts(
                    model(root.get("model")),
                    normalizer(root.get("normalizer"), "normalizer"),
                    preTokenizer(root.get("pre_tokenizer"), "pre_tokenizer"),
                    decoder(root.get("decoder"), "decoder"),
                    addedTokens(root.get("added_tokens")));
        } catch (IllegalArgumentException e) {
            throw new TokenizerException(source + ": " + e.getMessage(), e);
        }
    }

    private static BpeModel model(JsonNode node) {
        if (Json.isAbsent(node)) {
            throw new IllegalArgumentException("model is missing");
        }
        Json.object(node, "model");
        String type = Json.optionalString(node, "type", "model");
        if (type == null ? !node.has("merges") : !type.equals("BPE")) {
            throw new IllegalArgumentException(
                    "model.type " + Json.quote(type) + " is not supported (only BPE models are)");
        }
        JsonNode dropout = node.get("dropout");
        if (!Json.isAbsent(dropout) && (!dropout.isNumber() || dropout.doubleValue() != 0.0)) {
            throw new IllegalArgumentException(
                    "model.dropout "
                            + dropout
                            + " is not supported: inference needs deterministic encoding");
        }
        JsonNode vocabNode = Json.object(node.get("vocab"), "model.vocab");
        Map<String, Integer> vocab = HashMap.newHashMap(vocabNode.size());
        for (Iterator<Map.Entry<String, JsonNode>> it = vocabNode.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            vocab.put(
                    e.getKey(),
                    Json.integer(e.getValue(), "model.vocab[" + Json.quote(e.getKey()) + "]"));
        }
        JsonNode mergesNode = Json.array(node.get("merges"), "model.merges");
        List<String[]> merges = new ArrayList<>(mergesNode.size());
        for (int i = 0; i < mergesNode.size(); i++) {
            JsonNode m = mergesNode.get(i);
            String path = "model.merges[" + i + "]";
            if (m.isTextual()) {
                String line = m.textValue();
                if (line.startsWith("#version")) {
                    continue; // a header line some merges.txt conversions keep
                }
                String[] parts = line.split(" ", -1);
                if (parts.length != 2) {
                    throw new IllegalArgumentException(
                            path
                                    + " must be two pieces separated by one space, found "
                                    + Json.quote(line));
                }
                merges.add(parts);
            } else if (m.isArray()) {
                if (m.size() != 2) {
                    throw new IllegalArgumentException(
                            path + " must be a pair of pieces, found " + m.size() + " elements");
                }
                merges.add(
                        new String[] {
                            Json.string(m.get(0), path + "[0]"), Json.string(m.get(1), path + "[1]")
                        });
            } else {
                throw new IllegalArgumentException(
                        path + " must be a string or a pair of strings, found " + Json.kind(m));
            }
        }
        BpeModel.Options options =
                new BpeModel.Options(
                        Json.optionalString(node, "unk_token", "model"),
                        Json.bool(node, "fuse_unk", false, "model"),
                        Json.bool(node, "byte_fallback", false, "model"),
                        Json.bool(node, "ignore_merges", false, "model"),
                        Json.optionalString(node, "continuing_subword_prefix", "model"),
                        Json.optionalString(node, "end_of_word_suffix", "model"));
        return new BpeModel(vocab, merges, options);
    }

    private static String type(JsonNode node, String path) {
        Json.object(node, path);
        return Json.string(node.get("type"), path + ".type");
    }

    static Normalizer normalizer(JsonNode node, String path) {
        if (Json.isAbsent(node)) {
            return null;
        }
        String type = type(node, path);
        return switch (type) {
            case "Replace" ->
                    new Normalizer.Replace(
                            pattern(node.get("pattern"), path + ".pattern"),
                            Json.string(node.get("content"), path + ".content"));
            case "Prepend" ->
                    new Normalizer.Prepend(Json.string(node.get("prepend"), path + ".prepend"));
            case "NFC", "NFD", "NFKC", "NFKD" ->
                    new Normalizer.Unicode(java.text.Normalizer.Form.valueOf(type));
            case "Sequence" -> {
                JsonNode steps = Json.array(node.get("normalizers"), path + ".normalizers");
                List<Normalizer> list = new ArrayList<>();
                for (int i = 0; i < steps.size(); i++) {
                    String stepPath = path + ".normalizers[" + i + "]";
                    Json.object(steps.get(i), stepPath);
                    list.add(normalizer(steps.get(i), stepPath));
                }
                yield new Normalizer.Sequence(List.copyOf(list));
            }
            default ->
                    throw new IllegalArgumentException(
                            path
                                    + ".type "
                                    + Json.quote(type)
                                    + " is not supported (supported normalizers: Replace, Prepend, NFC, NFD, NFKC, NFKD, Sequence)");
        };
    }

    static PreTokenizer preTokenizer(JsonNode node, String path) {
        if (Json.isAbsent(node)) {
            return null;
        }
        String type = type(node, path);
        return switch (type) {
            case "Split" ->
                    new PreTokenizer.Split(
                            pattern(node.get("pattern"), path + ".pattern"),
                            behavior(Json.string(node.get("behavior"), path + ".behavior"), path),
                            Json.bool(node, "invert", false, path));
            case "Metaspace" ->
                    new PreTokenizer.Metaspace(
                            Json.character(node, "replacement", path),
                            prependScheme(node, path),
                            Json.bool(node, "split", true, path));
            case "Sequence" -> {
                JsonNode steps = Json.array(node.get("pretokenizers"), path + ".pretokenizers");
                List<PreTokenizer> list = new ArrayList<>();
                for (int i = 0; i < steps.size(); i++) {
                    String stepPath = path + ".pretokenizers[" + i + "]";
                    Json.object(steps.get(i), stepPath);
                    list.add(preTokenizer(steps.get(i), stepPath));
                }
                yield new PreTokenizer.Sequence(List.copyOf(list));
            }
            default ->
                    throw new IllegalArgumentException(
                            path
                                    + ".type "
                                    + Json.quote(type)
                                    + " is not supported (supported pre-tokenizers: Split, Metaspace, Sequence)");
        };
    }

    static Decoder decoder(JsonNode node, String path) {
        if (Json.isAbsent(node)) {
            return null;
        }
        String type = type(node, path);
        return switch (type) {
            case "Replace" ->
                    new Decoder.Replace(
                            pattern(node.get("pattern"), path + ".pattern"),
                            Json.string(node.get("content"), path + ".content"));
            case "ByteFallback" -> new Decoder.ByteFallback();
            case "Fuse" -> new Decoder.Fuse();
            case "Strip" -> {
                int start = Json.optionalInt(node, "start", 0, path);
                int stop = Json.optionalInt(node, "stop", 0, path);
                if (start < 0 || stop < 0) {
                    throw new IllegalArgumentException(
                            path + ": start and stop must not be negative");
                }
                yield new Decoder.Strip(Json.character(node, "content", path), start, stop);
            }
            case "Metaspace" ->
                    new Decoder.Metaspace(
                            Json.character(node, "replacement", path), prependScheme(node, path));
            case "Sequence" -> {
                JsonNode steps = Json.array(node.get("decoders"), path + ".decoders");
                List<Decoder> list = new ArrayList<>();
                for (int i = 0; i < steps.size(); i++) {
                    String stepPath = path + ".decoders[" + i + "]";
                    Json.object(steps.get(i), stepPath);
                    list.add(decoder(steps.get(i), stepPath));
                }
                yield new Decoder.Sequence(List.copyOf(list));
            }
            default ->
                    throw new IllegalArgumentException(
                            path
                                    + ".type "
                                    + Json.quote(type)
                                    + " is not supported (supported decoders: Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
        };
    }

    private static TextPattern pattern(JsonNode node, String path) {
        Json.object(node, path);
        if (node.size() == 1 && node.has("String")) {
            return TextPattern.literal(Json.string(node.get("String"), path + ".String"));
        }
        if (node.size() == 1 && node.has("Regex")) {
            return TextPattern.regex(Json.string(node.get("Regex"), path + ".Regex"));
        }
        throw new IllegalArgumentException(
                path + " must be {\"String\": ...} or {\"Regex\": ...}, found " + node);
    }

    private static PreTokenizer.Behavior behavior(String name, String path) {
        return switch (name) {
            case "Removed" -> PreTokenizer.Behavior.REMOVED;
            case "Isolated" -> PreTokenizer.Behavior.ISOLATED;
            case "MergedWithPrevious" -> PreTokenizer.Behavior.MERGED_WITH_PREVIOUS;
            case "MergedWithNext" -> PreTokenizer.Behavior.MERGED_WITH_NEXT;
            case "Contiguous" -> PreTokenizer.Behavior.CONTIGUOUS;
            default ->
                    throw new IllegalArgumentException(
                            path
                                    + ".behavior "
                                    + Json.quote(name)
                                    + " is not supported (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
        };
    }

    /** prepend_scheme, or the legacy add_prefix_space flag it replaced. */
    private static PreTokenizer.PrependScheme prependScheme(JsonNode node, String path) {
        String scheme = Json.optionalString(node, "prepend_scheme", path);
        JsonNode legacy = node.get("add_prefix_space");
        boolean noPrefix =
                !Json.isAbsent(legacy) && !Json.bool(node, "add_prefix_space", true, path);
        if (scheme == null) {
            return noPrefix ? PreTokenizer.PrependScheme.NEVER : PreTokenizer.PrependScheme.ALWAYS;
        }
        PreTokenizer.PrependScheme parsed =
                switch (scheme) {
                    case "always" -> PreTokenizer.PrependScheme.ALWAYS;
                    case "first" -> PreTokenizer.PrependScheme.FIRST;
                    case "never" -> PreTokenizer.PrependScheme.NEVER;
                    default ->
                            throw new IllegalArgumentException(
                                    path
                                            + ".prepend_scheme "
                                            + Json.quote(scheme)
                                            + " is not one of always, first, never");
                };
        if (noPrefix && parsed != PreTokenizer.PrependScheme.NEVER) {
            throw new IllegalArgumentException(
                    path
                            + ": add_prefix_space false contradicts prepend_scheme "
                            + Json.quote(scheme));
        }
        return parsed;
    }

    private static List<AddedToken> addedTokens(JsonNode node) {
        List<AddedToken> tokens = new ArrayList<>();
        if (Json.isAbsent(node)) {
            return tokens;
        }
        Json.array(node, "added_tokens");
        for (int i = 0; i < node.size(); i++) {
            String path = "added_tokens[" + i + "]";
            JsonNode t = Json.object(node.get(i), path);
            tokens.add(addedToken(t, Json.integer(t.get("id"), path + ".id"), path));
        }
        return tokens;
    }

    /** One added token description, as in added_tokens and tokenizer_config.json's added_tokens_decoder. */
    static AddedToken addedToken(JsonNode t, int id, String path) {
        String content = Json.string(t.get("content"), path + ".content");
        boolean special = Json.bool(t, "special", false, path);
        return new AddedToken(
                id,
                content,
                special,
                Json.bool(t, "single_word", false, path),
                Json.bool(t, "lstrip", false, path),
                Json.bool(t, "rstrip", false, path),
                Json.bool(t, "normalized", !special, path));
    }
}
