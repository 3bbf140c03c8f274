package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import io.jemma.api.dto.ChatMessage;
import io.jemma.tokenizer.ChatTemplate;
import io.jemma.tokenizer.ChatTemplateException;
import io.jemma.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Turns request prompts into token ids: chat messages through the checkpoint's chat template, text prompts with BOS. */
final class Prompts {
    private Prompts() {
    }

    /**
     * Renders the conversation with the chat template (which writes BOS itself) and a generation prompt.
     *
     * @throws ApiError for empty or malformed messages, or when the template refuses them
     */
    static int[] chat(List<ChatMessage> messages, Optional<ChatTemplate> template, Tokenizer tokenizer) {
        List<Map<String, Object>> rendered = messages(messages);
        ChatTemplate t = template.orElseThrow(() -> ApiError.unsupported("messages",
                "this model has no chat template; use /v1/completions with a prompt"));
        String text;
        try {
            text = t.render(rendered, true, Map.of());
        } catch (ChatTemplateException e) {
            throw ApiError.invalid("messages", e.getMessage());
        }
        return tokenizer.encode(text);
    }

    /** The messages as the template takes them: role and string content. */
    static List<Map<String, Object>> messages(List<ChatMessage> messages) {
        if (messages == null || messages.isEmpty()) {
            throw ApiError.invalid("messages", "messages must be a non-empty list");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            ChatMessage m = messages.get(i);
            String param = "messages[" + i + "]";
            if (m == null) {
                throw ApiError.wrongType(param, param + " must be an object with a role and content");
            }
            String role = role(m.role(), param);
            Map<String, Object> message = new LinkedHashMap<>();
            message.put("role", role);
            message.put("content", content(m.content(), role, param + ".content"));
            out.add(message);
        }
        return out;
    }

    private static String role(String role, String param) {
        if (role == null) {
            throw ApiError.invalid(param + ".role", param + ".role is required");
        }
        return switch (role) {
            case "system", "user", "assistant" -> role;
            case "developer" -> "system";
            default -> throw ApiError.invalid(param + ".role", "unknown role '" + role
                    + "'; this server takes system, user and assistant messages");
        };
    }

    /** A string, or a list of text parts joined by newlines; null is an empty assistant message. */
    private static String content(JsonNode content, String role, String param) {
        if (content == null || content.isNull()) {
            if (role.equals("assistant")) {
                return "";
            }
            throw ApiError.invalid(param, param + " is required");
        }
        if (content.isTextual()) {
            return wellFormed(content.textValue(), param);
        }
        if (!content.isArray()) {
            throw ApiError.wrongType(param, param + " must be a string or a list of content parts");
        }
        StringBuilder text = new StringBuilder();
        int i = 0;
        for (JsonNode part : content) {
            String partParam = param + "[" + i++ + "]";
            if (!part.isObject() || !part.path("type").isTextual()) {
                throw ApiError.wrongType(partParam, partParam + " must be an object with a type");
            }
            String type = part.get("type").textValue();
            if (!type.equals("text")) {
                throw ApiError.unsupported(partParam + ".type", "content parts of type '" + type
                        + "' are not supported; this server takes text only");
            }
            JsonNode partText = part.get("text");
            if (partText == null || !partText.isTextual()) {
                throw ApiError.wrongType(partParam + ".text", partParam + ".text must be a string");
            }
            if (!text.isEmpty()) {
                text.append('\n');
            }
            text.append(wellFormed(partText.textValue(), partParam + ".text"));
        }
        return text.toString();
    }

    /**
     * The prompts of a completions request: a string, a list of strings, a list of token ids or a list of
     * lists of token ids. Text gets BOS in front; token ids are taken as they are.
     */
    static List<int[]> completion(JsonNode prompt, Tokenizer tokenizer, int vocabSize) {
        if (prompt == null || prompt.isNull()) {
            throw ApiError.invalid("prompt", "prompt is required");
        }
        if (prompt.isTextual()) {
            return List.of(text(wellFormed(prompt.textValue(), "prompt"), tokenizer));
        }
        if (!prompt.isArray()) {
            throw ApiError.wrongType("prompt", "prompt must be a string, a list of strings or a list of token ids");
        }
        if (prompt.isEmpty()) {
            throw ApiError.invalid("prompt", "prompt must not be an empty list");
        }
        if (prompt.get(0).isNumber()) {
            return List.of(tokenIds(prompt, "prompt", vocabSize));
        }
        if (prompt.size() > Limits.MAX_PROMPTS) {
            throw ApiError.invalid("prompt", "at most " + Limits.MAX_PROMPTS + " prompts per request");
        }
        List<int[]> out = new ArrayList<>();
        int i = 0;
        for (JsonNode p : prompt) {
            String param = "prompt[" + i++ + "]";
            if (p.isTextual()) {
                out.add(text(wellFormed(p.textValue(), param), tokenizer));
            } else if (p.isArray() && !p.isEmpty()) {
                out.add(tokenIds(p, param, vocabSize));
            } else {
                throw ApiError.wrongType(param, "prompt must be a string, a list of strings or a list of token ids");
            }
        }
        return out;
    }

    private static int[] text(String text, Tokenizer tokenizer) {
        int[] ids = tokenizer.encode(text);
        var bos = tokenizer.bosId();
        if (bos.isEmpty()) {
            return ids.length == 0 ? failEmpty() : ids;
        }
        int[] out = new int[ids.length + 1];
        out[0] = bos.getAsInt();
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }

    private static int[] failEmpty() {
        throw ApiError.invalid("prompt", "the prompt is empty");
    }

    private static int[] tokenIds(JsonNode list, String param, int vocabSize) {
        int[] ids = new int[list.size()];
        int i = 0;
        for (JsonNode id : list) {
            if (!id.isIntegralNumber() || !id.canConvertToInt()) {
                throw ApiError.wrongType(param, param + " must hold token ids (integers)");
            }
            int v = id.intValue();
            if (v < 0 || v >= vocabSize) {
                throw ApiError.invalid(param, "token id " + v + " is outside the vocabulary (0 to "
                        + (vocabSize - 1) + ")");
            }
            ids[i++] = v;
        }
        return ids;
    }

    /**
     * The text itself when it is valid Unicode. JSON escapes can spell a lone UTF-16 surrogate
     * ({@code "\\ud800"}), which no UTF-8 text contains: refused rather than silently replaced.
     */
    private static String wellFormed(String text, String param) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw ApiError.invalid(param, param + " is not valid Unicode: an unpaired surrogate \\u"
                        + Integer.toHexString(c) + " at character " + i);
            }
        }
        return text;
    }
}
