package io.jemma.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Reading helpers for tokenizer files. Problems are reported as IllegalArgumentException with the
 * JSON path; the caller adds the file name when turning it into a {@link TokenizerException}.
 */
final class Json {

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private Json() {}

    static JsonNode parse(String text, String source) {
        try {
            JsonNode root = MAPPER.readTree(text);
            if (root == null || root.isMissingNode()) {
                throw new TokenizerException(source + ": the file is empty");
            }
            return root;
        } catch (JsonProcessingException e) {
            throw new TokenizerException(source + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** A short, quoted rendering of a piece of text for error messages. */
    static String quote(String text) {
        if (text == null) {
            return "null";
        }
        String shown = text.length() > 60 ? text.substring(0, 60) + "..." : text;
        StringBuilder out = new StringBuilder("\"");
        shown.codePoints()
                .forEach(
                        cp -> {
                            if (cp < 0x20 || cp == 0x7F) {
                                out.append(String.format("\\u%04x", cp));
                            } else if (cp == '"' || cp == '\\') {
                                out.append('\\').appendCodePoint(cp);
                            } else {
                                out.appendCodePoint(cp);
                            }
                        });
        return out.append('"').toString();
    }

    static String kind(JsonNode node) {
        if (node == null || node.isMissingNode()) {
            return "nothing";
        }
        return switch (node.getNodeType()) {
            case ARRAY -> "an array";
            case OBJECT, POJO -> "an object";
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            default -> "something else";
        };
    }

    static JsonNode object(JsonNode node, String path) {
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException(path + " must be an object, found " + kind(node));
        }
        return node;
    }

    static JsonNode array(JsonNode node, String path) {
        if (node == null || !node.isArray()) {
            throw new IllegalArgumentException(path + " must be an array, found " + kind(node));
        }
        return node;
    }

    static boolean isAbsent(JsonNode node) {
        return node == null || node.isNull() || node.isMissingNode();
    }

    static String string(JsonNode node, String path) {
        if (node == null || !node.isTextual()) {
            throw new IllegalArgumentException(path + " must be a string, found " + kind(node));
        }
        return node.textValue();
    }

    static String optionalString(JsonNode parent, String field, String path) {
        JsonNode node = parent.get(field);
        return isAbsent(node) ? null : string(node, path + "." + field);
    }

    static boolean bool(JsonNode parent, String field, boolean absent, String path) {
        JsonNode node = parent.get(field);
        if (isAbsent(node)) {
            return absent;
        }
        if (!node.isBoolean()) {
            throw new IllegalArgumentException(
                    path + "." + field + " must be true or false, found " + kind(node));
        }
        return node.booleanValue();
    }

    static int integer(JsonNode node, String path) {
        if (node == null || !node.isIntegralNumber() || !node.canConvertToInt()) {
            throw new IllegalArgumentException(path + " must be an integer, found " + kind(node));
        }
        return node.intValue();
    }

    static int optionalInt(JsonNode parent, String field, int absent, String path) {
        JsonNode node = parent.get(field);
        return isAbsent(node) ? absent : integer(node, path + "." + field);
    }

    /** A JSON string holding exactly one character (code point). */
    static int character(JsonNode parent, String field, String path) {
        String s = string(parent.get(field), path + "." + field);
        if (s.isEmpty() || s.codePointCount(0, s.length()) != 1) {
            throw new IllegalArgumentException(
                    path + "." + field + " must be a single character, found " + quote(s));
        }
        return s.codePointAt(0);
    }
}
