package io.jemma.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Our tokenizer and chat template against what Hugging Face tokenizers / transformers produced for the
 * golden checkpoints' tokenizer (tools/reference/make_golden.py).
 */
class TokenizerGoldenTest {

    static Path dir;
    static JsonNode reference;
    static Tokenizer tokenizer;

    @BeforeAll
    static void load() throws Exception {
        Path golden = Path.of(TokenizerGoldenTest.class.getResource("/golden").toURI());
        dir = golden.resolve("tiny-31b");
        reference = new ObjectMapper().readTree(Files.readString(golden.resolve("tokenizer-reference.json")));
        tokenizer = Tokenizer.load(dir);
    }

    @Test
    void encodesTheCorpusToTheSameIds() {
        for (JsonNode entry : reference.get("corpus")) {
            String text = entry.get("text").asText();
            assertArrayEquals(ints(entry.get("ids")), tokenizer.encode(text), "ids of " + quote(text));
        }
    }

    @Test
    void decodesTheCorpusToTheSameText() {
        for (JsonNode entry : reference.get("corpus")) {
            assertEquals(entry.get("decoded").asText(), tokenizer.decode(ints(entry.get("ids"))),
                    "decode of " + quote(entry.get("text").asText()));
        }
    }

    @Test
    void streamingDecodeOfTheCorpusEqualsTheFullDecode() {
        for (JsonNode entry : reference.get("corpus")) {
            int[] ids = ints(entry.get("ids"));
            var detok = new IncrementalDetokenizer(tokenizer, false);
            StringBuilder streamed = new StringBuilder();
            for (int id : ids) {
                streamed.append(detok.push(id));
            }
            streamed.append(detok.flush());
            assertEquals(tokenizer.decode(ids), streamed.toString(), "streamed " + quote(entry.get("text").asText()));
        }
    }

    @Test
    void rendersTheChatTemplateAsTransformers() {
        ChatTemplate template = ChatTemplate.forModel(dir).orElseThrow();
        for (JsonNode chat : reference.get("chats")) {
            List<Map<String, Object>> messages = new ArrayList<>();
            for (JsonNode m : chat.get("messages")) {
                Map<String, Object> message = new LinkedHashMap<>();
                message.put("role", m.get("role").asText());
                JsonNode content = m.get("content");
                if (content.isTextual()) {
                    message.put("content", content.asText());
                } else {
                    List<Map<String, Object>> parts = new ArrayList<>();
                    for (JsonNode part : content) {
                        parts.add(Map.of("type", part.get("type").asText(), "text", part.get("text").asText()));
                    }
                    message.put("content", parts);
                }
                messages.add(message);
            }
            assertEquals(chat.get("rendered").asText(),
                    template.render(messages, chat.get("add_generation_prompt").asBoolean(), Map.of()),
                    "rendering of " + chat.get("messages"));
        }
    }

    private static String quote(String s) {
        return "\"" + s.replace("\n", "\\n") + "\"";
    }

    private static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asInt();
        }
        return out;
    }
}
