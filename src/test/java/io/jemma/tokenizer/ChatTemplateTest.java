package io.jemma.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Chat templates render as transformers renders them. Expected prompts were produced with Python
 * jinja2 3.1 configured as transformers configures it (sandboxed, trim_blocks, lstrip_blocks,
 * loopcontrols, its tojson and raise_exception).
 */
class ChatTemplateTest {

    private static final Map<String, String> TOKENS =
            Map.of("bos_token", "<bos>", "eos_token", "<eos>");

    private static final List<Map<String, Object>> CONVERSATION =
            List.of(
                    Map.of("role", "system", "content", "  You are helpful. "),
                    Map.of("role", "user", "content", "Hi there!"),
                    Map.of("role", "assistant", "content", " Hello! How can I help? "),
                    Map.of(
                            "role",
                            "user",
                            "content",
                            List.of(Map.of("type", "text", "text", "What is 2+2?"))));

    static String resource(String name) {
        try (InputStream in = ChatTemplateTest.class.getResourceAsStream("/tokenizer/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Ordered like a Python dict, which matters when a template serializes messages with tojson. */
    private static Map<String, Object> message(String role, Object content) {
        Map<String, Object> m = new java.util.LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }

    private static ChatTemplate gemma4() {
        return ChatTemplate.of(resource("gemma4_style_chat_template.jinja"), TOKENS);
    }

    @Test
    void gemma4ConversationWithGenerationPrompt() {
        assertEquals(
                "<bos><|turn>system\nYou are helpful.<turn|>\n<|turn>user\nHi there!<turn|>\n"
                        + "<|turn>model\nHello! How can I help?<turn|>\n<|turn>user\nWhat is 2+2?<turn|>\n<|turn>model\n",
                gemma4().render(CONVERSATION, true));
    }

    @Test
    void generationPromptOnlyWhenAsked() {
        List<Map<String, Object>> messages =
                List.of(Map.of("role", "user", "content", "Hi friend?"));

        assertEquals("<bos><|turn>user\nHi friend?<turn|>\n", gemma4().render(messages, false));
        assertEquals(
                "<bos><|turn>user\nHi friend?<turn|>\n<|turn>model\n",
                gemma4().render(messages, true));
    }

    @Test
    void raiseExceptionRefusesTheConversation() {
        List<Map<String, Object>> twoUsers =
                List.of(
                        Map.of("role", "user", "content", "Hi"),
                        Map.of("role", "user", "content", "again"));
        ChatTemplate gemma3 = ChatTemplate.of(resource("gemma3_chat_template.jinja"), TOKENS);

        ChatTemplateException alternate =
                assertThrows(ChatTemplateException.class, () -> gemma3.render(twoUsers, true));
        assertEquals(
                "Conversation roles must alternate user/assistant/user/assistant/...",
                alternate.getMessage());
        ChatTemplateException role =
                assertThrows(
                        ChatTemplateException.class,
                        () ->
                                gemma4().render(
                                                List.of(Map.of("role", "tool", "content", "{}")),
                                                true));
        assertEquals("Unknown role: tool", role.getMessage());
    }

    @Test
    void gemma3TemplateFoldsTheSystemPromptIntoTheFirstTurn() {
        ChatTemplate gemma3 = ChatTemplate.of(resource("gemma3_chat_template.jinja"), TOKENS);

        assertEquals(
                "<bos><start_of_turn>user\n  You are helpful. \n\nHi there!<end_of_turn>\n<start_of_turn>model\n"
                        + "Hello! How can I help?<end_of_turn>\n<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
                gemma3.render(CONVERSATION, true));
    }

    @Test
    void blockWhitespaceIsTrimmedAsTransformersDoes() {
        ChatTemplate plain = ChatTemplate.of(resource("plain_chat_template.jinja"), TOKENS);
        List<Map<String, Object>> messages =
                List.of(Map.of("role", "user", "content", "Hi friend?"));

        assertEquals("User: Hi friend?\nAssistant:", plain.render(messages, true));
        assertEquals("User: Hi friend?\n", plain.render(messages, false));
    }

    @Test
    void pythonStringMethodsAndTojsonBehaveLikePython() {
        ChatTemplate t = ChatTemplate.of(resource("python_methods_template.jinja"), TOKENS);
        List<Map<String, Object>> messages =
                List.of(message("user", "  Hi  there?  "), message("assistant", "ok"));

        assertEquals(resource("python_methods_expected.txt"), t.render(messages, false));
    }

    /**
     * Templates with trim_blocks, lstrip_blocks, '-' and '+' markers, comments and raw blocks, each
     * with the output Python jinja2 gives under transformers' settings.
     */
    @Test
    void whitespaceRulesMatchJinja2() throws IOException {
        JsonNode cases = TokenizerJson.MAPPER.readTree(resource("jinja2_whitespace_cases.json"));
        assertTrue(cases.size() > 50);
        for (JsonNode c : cases) {
            String template = c.get("template").textValue();
            assertEquals(
                    c.get("expected").textValue(),
                    ChatTemplate.of(template, TOKENS).render(List.of(), false),
                    () -> Json.quote(template));
        }
    }

    @Test
    void extraArgumentsAndSpecialTokensReachTheTemplate() {
        ChatTemplate t =
                ChatTemplate.of(
                        "{% if enable_thinking %}<think>{% endif %}{{ custom }}{{ eos_token }}",
                        TOKENS);

        assertEquals(
                "<think>CV<eos>",
                t.render(List.of(), true, Map.of("enable_thinking", true, "custom", "CV")));
        assertEquals("CV<eos>", t.render(List.of(), true, Map.of("custom", "CV")));
    }

    @Test
    void onlyTheTemplatesOwnTrailingNewlineIsDropped() {
        assertEquals("x", ChatTemplate.of("{{ 'x' }}\n", TOKENS).render(List.of(), false));
        assertEquals("x\n", ChatTemplate.of("{{ 'x\\n' }}", TOKENS).render(List.of(), false));
        assertEquals("a\n", ChatTemplate.of("a\r\n\r\n", TOKENS).render(List.of(), false));
    }

    @Test
    void generationBlocksRenderTheirBody() {
        ChatTemplate t =
                ChatTemplate.of(
                        "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}[{{ m.content }}]{% endgeneration %}"
                                + "{% else %}{{ m.content }}{% endif %}{% endfor %}",
                        TOKENS);

        assertEquals(
                "Hi there![Hello! How can I help?]",
                t.render(
                        List.of(
                                CONVERSATION.get(1),
                                Map.of("role", "assistant", "content", "Hello! How can I help?")),
                        false));
    }

    @Test
    void brokenTemplatesFailWithChatTemplateException() {
        ChatTemplateException e =
                assertThrows(
                        ChatTemplateException.class,
                        () ->
                                ChatTemplate.of("{{ no_such_function(1) }}", TOKENS)
                                        .render(List.of(), true));
        assertTrue(e.getMessage().contains("chat template failed"), e.getMessage());
        assertThrows(
                ChatTemplateException.class,
                () ->
                        ChatTemplate.of("{{ messages[0].content.nosuchmethod() }}", TOKENS)
                                .render(List.of(Map.of("role", "user", "content", "x")), true));
    }

    @Test
    void checkpointWithoutTemplateCannotChatButStillEncodes(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), TestTokenizers.englishJson());
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": \"<bos>\"}");
        Tokenizer t = Tokenizer.load(dir);

        ChatTemplateException e =
                assertThrows(ChatTemplateException.class, () -> ChatTemplate.requireForModel(dir));
        assertTrue(e.getMessage().contains("no chat template"), e.getMessage());
        assertThrows(ChatTemplateException.class, () -> ChatTemplate.requireForTokenizer(t));
        assertEquals("the people", t.decode(t.encode("the people")));
    }

    @Test
    void renderedPromptEncodesWithSpecialTokenIds(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), TestTokenizers.englishJson());
        Files.writeString(
                dir.resolve("tokenizer_config.json"),
                "{\"bos_token\": \"<bos>\", \"eos_token\": \"<eos>\"}");
        Files.writeString(
                dir.resolve("chat_template.jinja"), resource("gemma4_style_chat_template.jinja"));
        Tokenizer t = Tokenizer.load(dir);
        ChatTemplate template = ChatTemplate.requireForModel(dir);

        String prompt =
                template.render(List.of(Map.of("role", "user", "content", "the people")), true);
        int[] ids = t.encode(prompt);

        assertEquals(
                prompt,
                ChatTemplate.requireForTokenizer(t)
                        .render(List.of(Map.of("role", "user", "content", "the people")), true));
        int bos = t.bosId().getAsInt();
        int turn = t.tokenId("<|turn>").getAsInt();
        int endTurn = t.tokenId("<turn|>").getAsInt();
        assertArrayEquals(new int[] {bos, turn}, java.util.Arrays.copyOf(ids, 2));
        assertEquals(2, java.util.Arrays.stream(ids).filter(id -> id == turn).count());
        assertEquals(1, java.util.Arrays.stream(ids).filter(id -> id == endTurn).count());
        assertEquals("user\nthe people\nmodel\n", t.decode(ids, true));
    }
}
