package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.model.output.FinishReason;
import io.jemma.engine.InferenceEngine;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static io.jemma.api.ApiClient.MODEL;
import static io.jemma.api.ApiClient.chat;
import static io.jemma.api.ApiClient.postJson;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** LangChain4j's OpenAI module, unmodified, talks to the server: streaming and not. */
@QuarkusTest
class ClientCompatibilityTest {
    private static final String QUESTION = "What is the capital of France?";
    private static final int MAX_TOKENS = 12;

    @Inject
    InferenceEngine engine;

    @BeforeEach
    void loaded() {
        ApiClient.awaitLoaded(engine);
    }

    /** The same request through the raw API, to compare with. */
    private static JsonNode reference() {
        return postJson("/v1/chat/completions", chat(QUESTION).put("temperature", 0).put("max_tokens", MAX_TOKENS)
                .put("ignore_eos", true));
    }

    @Test
    void langChain4jStreamsAChatCompletion() throws Exception {
        OpenAiStreamingChatModel model = OpenAiStreamingChatModel.builder()
                .baseUrl(ApiClient.base() + "/v1").apiKey("not-needed").modelName(MODEL)
                .temperature(0.0).maxTokens(MAX_TOKENS).customParameters(Map.of("ignore_eos", true))
                .timeout(Duration.ofMinutes(2)).build();
        StringBuilder partial = new StringBuilder();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        model.chat(QUESTION, new StreamingChatResponseHandler() {
            @Override
            public void onPartialResponse(String text) {
                partial.append(text);
            }

            @Override
            public void onCompleteResponse(ChatResponse response) {
                done.complete(response);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        ChatResponse response = done.get(2, TimeUnit.MINUTES);
        JsonNode expected = reference();
        String text = expected.at("/choices/0/message/content").asText();
        assertFalse(text.isEmpty());
        assertEquals(text, partial.toString());
        assertEquals(text, response.aiMessage().text());
        assertEquals(FinishReason.LENGTH, response.finishReason());
        assertEquals(expected.at("/usage/prompt_tokens").asInt(), response.tokenUsage().inputTokenCount());
        assertEquals(MAX_TOKENS, response.tokenUsage().outputTokenCount());
        assertEquals(expected.at("/usage/total_tokens").asInt(), response.tokenUsage().totalTokenCount());
    }

    @Test
    void langChain4jGetsAWholeChatCompletion() {
        OpenAiChatModel model = OpenAiChatModel.builder()
                .baseUrl(ApiClient.base() + "/v1").apiKey("not-needed").modelName(MODEL)
                .temperature(0.0).maxTokens(MAX_TOKENS).customParameters(Map.of("ignore_eos", true))
                .timeout(Duration.ofMinutes(2)).build();
        ChatResponse response = model.chat(dev.langchain4j.model.chat.request.ChatRequest.builder()
                .messages(dev.langchain4j.data.message.UserMessage.from(QUESTION)).build());
        JsonNode expected = reference();
        assertEquals(expected.at("/choices/0/message/content").asText(), response.aiMessage().text());
        assertEquals(FinishReason.LENGTH, response.finishReason());
        assertEquals(MAX_TOKENS, response.tokenUsage().outputTokenCount());
    }
}
