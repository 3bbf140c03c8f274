package io.jemma.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What we use of transformers' tokenizer_config.json: the special token texts, chat templates by
 * name ("default" for a plain string), and added_tokens_decoder.
 */
record TokenizerConfig(
        String bosToken,
        String eosToken,
        String unkToken,
        String padToken,
        Map<String, String> chatTemplates,
        List<AddedToken> addedTokens) {

    static final TokenizerConfig EMPTY =
            new TokenizerConfig(null, null, null, null, Map.of(), List.of());

    static TokenizerConfig parse(String json, String source) {
        JsonNode root = Json.parse(json, source);
        try {
            Json.object(root, "the top level");
            return new TokenizerConfig(
                    tokenText(root, "bos_token"),
                    tokenText(root, "eos_token"),
                    tokenText(root, "unk_token"),
                    tokenText(root, "pad_token"),
                    chatTemplates(root.get("chat_template"), "chat_template"),
                    addedTokensDecoder(root.get("added_tokens_decoder")));
        } catch (IllegalArgumentException e) {
            throw new TokenizerException(source + ": " + e.getMessage(), e);
        }
    }

    /** The template transformers would use without a template name: "default", or the only one there is. */
    String defaultChatTemplate() {
        String template = chatTemplates.get("default");
        if (template == null && chatTemplates.size() == 1) {
            template = chatTemplates.values().iterator().next();
        }
        return template;
    }

    TokenizerConfig withChatTemplates(Map<String, String> templates) {
        return new TokenizerConfig(bosToken, eosToken, unkToken, padToken, templates, addedTokens);
    }

    /** A special token is written either as its text or as an AddedToken object with "content". */
    private static String tokenText(JsonNode root, String field) {
        JsonNode node = root.get(field);
        if (Json.isAbsent(node)) {
            return null;
        }
        if (node.isTextual()) {
            return node.textValue();
        }
        if (node.isObject()) {
            return Json.string(node.get("content"), field + ".content");
        }
        throw new IllegalArgumentException(
                field
                        + " must be a string or an object with \"content\", found "
                        + Json.kind(node));
    }

    /** chat_template: a string, or a list of {name, template}. */
    static Map<String, String> chatTemplates(JsonNode node, String path) {
        Map<String, String> templates = new LinkedHashMap<>();
        if (Json.isAbsent(node)) {
            return templates;
        }
        if (node.isTextual()) {
            templates.put("default", node.textValue());
            return templates;
        }
        Json.array(node, path);
        for (int i = 0; i < node.size(); i++) {
            String itemPath = path + "[" + i + "]";
            JsonNode item = Json.object(node.get(i), itemPath);
            templates.put(
                    Json.string(item.get("name"), itemPath + ".name"),
                    Json.string(item.get("template"), itemPath + ".template"));
        }
        return templates;
    }

    private static List<AddedToken> addedTokensDecoder(JsonNode node) {
        List<AddedToken> tokens = new ArrayList<>();
        if (Json.isAbsent(node)) {
            return tokens;
        }
        Json.object(node, "added_tokens_decoder");
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String path = "added_tokens_decoder[" + Json.quote(e.getKey()) + "]";
            int id;
            try {
                id = Integer.parseInt(e.getKey());
            } catch (NumberFormatException ex) {
                throw new IllegalArgumentException(path + ": the key must be a token id");
            }
            tokens.add(TokenizerJsonReader.addedToken(Json.object(e.getValue(), path), id, path));
        }
        return tokens;
    }
}
