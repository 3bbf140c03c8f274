package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jemma.engine.GenerationChunk;
import io.jemma.engine.GenerationRequest;
import io.jemma.engine.InferenceEngine;
import io.jemma.engine.sampling.Penalties;
import io.jemma.engine.sampling.SamplingParams;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static io.jemma.api.ApiClient.JSON;
import static io.jemma.api.ApiClient.MODEL;
import static io.jemma.api.ApiClient.chat;
import static io.jemma.api.ApiClient.completion;
import static io.jemma.api.ApiClient.finishReason;
import static io.jemma.api.ApiClient.post;
import static io.jemma.api.ApiClient.postJson;
import static io.jemma.api.ApiClient.sseJson;
import static io.jemma.api.ApiClient.streamedText;
import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.greaterThan;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The endpoints against the embedded model (random weights: the text is noise, but deterministic under
 * greedy decoding or a seed): response shapes, the SSE framing, usage, finish reasons, stop strings and
 * stop tokens, n, seeds, logprobs, models, health and metrics.
 */
@QuarkusTest
class ApiEndpointsTest {

    @Inject
    InferenceEngine engine;

    @BeforeEach
    void loaded() {
        ApiClient.awaitLoaded(engine);
    }

    @AfterEach
    void nothingLeaks() {
        ApiClient.awaitIdle(engine);
    }

    private static ObjectNode greedyChat(String text, int maxTokens) {
        return chat(text).put("temperature", 0).put("max_tokens", maxTokens);
    }

    // ---- models ----

    @Test
    void modelsListTheServedModelWithItsContextLength() {
        given().get("/v1/models").then().statusCode(200)
                .body("object", equalTo("list"))
                .body("data.size()", equalTo(1))
                .body("data[0].id", equalTo(MODEL))
                .body("data[0].object", equalTo("model"))
                .body("data[0].owned_by", equalTo("jemma"))
                .body("data[0].created", greaterThan(0))
                .body("data[0].context_length", equalTo(4096))
                .body("data[0].max_model_len", equalTo(4096))
                .body("data[0].backend", equalTo("cpu"))
                .body("data[0].attention_backend", equalTo("cpu"));
        given().get("/v1/models/" + MODEL).then().statusCode(200)
                .body("id", equalTo(MODEL)).body("object", equalTo("model")).body("context_length", equalTo(4096))
                .body("attention_backend", equalTo("cpu"));
        given().get("/v1/models/gpt-4o").then().statusCode(404)
                .body("error.code", equalTo("model_not_found")).body("error.param", equalTo("model"));
    }

    // ---- chat ----

    @Test
    void chatCompletionHasTheOpenAiShape() {
        JsonNode r = postJson("/v1/chat/completions", greedyChat("Hello there", 12));
        assertTrue(r.get("id").asText().startsWith("chatcmpl-"), r.toString());
        assertEquals("chat.completion", r.get("object").asText());
        assertTrue(r.get("created").asLong() > 1_700_000_000L);
        assertEquals(MODEL, r.get("model").asText());
        assertEquals(1, r.get("choices").size());
        JsonNode choice = r.get("choices").get(0);
        assertEquals(0, choice.get("index").asInt());
        assertEquals("assistant", choice.at("/message/role").asText());
        assertTrue(choice.at("/message/content").isTextual());
        assertTrue(choice.has("logprobs") && choice.get("logprobs").isNull());
        assertTrue(Set.of("stop", "length").contains(choice.get("finish_reason").asText()));
        JsonNode usage = r.get("usage");
        int prompt = usage.get("prompt_tokens").asInt();
        int completion = usage.get("completion_tokens").asInt();
        assertTrue(prompt > 2 && completion >= 1 && completion <= 12, usage.toString());
        assertEquals(prompt + completion, usage.get("total_tokens").asInt());
        // the prompt is the chat template's rendering, BOS included
        assertEquals(engine.tokenizer().encode(engine.chatTemplate().orElseThrow().render(
                List.of(Map.of("role", "user", "content", "Hello there")), true, Map.of())).length,
                prompt);
    }

    @Test
    void chatStreamIsFramedAsServerSentEventsWithRoleContentFinishUsageAndDone() {
        ObjectNode body = greedyChat("Tell me a story", 10).put("ignore_eos", true).put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        HttpResponse<String> r = post("/v1/chat/completions", body);
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"),
                r.headers().toString());
        List<JsonNode> events = sseJson(r.body()); // checks "data: " + json + "\n\n" ... "data: [DONE]\n\n"
        String id = events.getFirst().get("id").asText();
        assertTrue(id.startsWith("chatcmpl-"));
        for (JsonNode e : events) {
            assertEquals(id, e.get("id").asText());
            assertEquals("chat.completion.chunk", e.get("object").asText());
            assertEquals(MODEL, e.get("model").asText());
            assertTrue(e.get("created").asLong() > 0);
        }
        JsonNode first = events.getFirst().get("choices").get(0);
        assertEquals(0, first.get("index").asInt());
        assertEquals("assistant", first.at("/delta/role").asText());
        assertEquals("", first.at("/delta/content").asText());
        JsonNode usageEvent = events.getLast();
        assertEquals(0, usageEvent.get("choices").size());
        assertEquals(10, usageEvent.at("/usage/completion_tokens").asInt());
        assertEquals(usageEvent.at("/usage/prompt_tokens").asInt() + 10, usageEvent.at("/usage/total_tokens").asInt());
        JsonNode finish = events.get(events.size() - 2).get("choices").get(0);
        assertEquals(0, finish.get("delta").size(), "the last chunk's delta is empty");
        assertEquals("length", finish.get("finish_reason").asText());
        for (JsonNode e : events.subList(1, events.size() - 2)) {
            JsonNode c = e.get("choices").get(0);
            assertFalse(c.path("delta").path("content").asText().isEmpty(), "no empty content chunks");
            assertFalse(c.path("delta").has("role"));
            assertTrue(c.get("finish_reason").isNull());
        }
        for (JsonNode e : events.subList(0, events.size() - 1)) {
            assertFalse(e.has("usage"), "usage only on the last chunk");
        }
        // the same text as the non-streamed answer
        JsonNode whole = postJson("/v1/chat/completions", greedyChat("Tell me a story", 10).put("ignore_eos", true));
        assertEquals(whole.at("/choices/0/message/content").asText(), streamedText(events, 0));
    }

    @Test
    void streamWithoutIncludeUsageHasNoUsageChunk() {
        HttpResponse<String> r = post("/v1/chat/completions", greedyChat("Hi", 3).put("stream", true));
        List<JsonNode> events = sseJson(r.body());
        for (JsonNode e : events) {
            assertFalse(e.has("usage"));
            assertEquals(1, e.get("choices").size());
        }
        assertTrue(Set.of("stop", "length").contains(finishReason(events, 0)));
    }

    @Test
    void maxTokensEndsWithLengthAndMaxCompletionTokensWins() {
        JsonNode r = postJson("/v1/chat/completions", greedyChat("Count", 7).put("ignore_eos", true));
        assertEquals("length", r.at("/choices/0/finish_reason").asText());
        assertEquals(7, r.at("/usage/completion_tokens").asInt());
        JsonNode both = postJson("/v1/chat/completions",
                greedyChat("Count", 7).put("ignore_eos", true).put("max_completion_tokens", 3));
        assertEquals(3, both.at("/usage/completion_tokens").asInt());
    }

    @Test
    void contentPartsAndSystemMessagesRender() {
        ObjectNode body = JSON.createObjectNode().put("temperature", 0).put("max_tokens", 4);
        var messages = body.putArray("messages");
        messages.addObject().put("role", "system").put("content", "Be brief.");
        var user = messages.addObject().put("role", "user");
        user.putArray("content").addObject().put("type", "text").put("text", "Hello");
        messages.addObject().put("role", "assistant").put("content", "Hi!");
        messages.addObject().put("role", "user").put("content", "Again");
        JsonNode r = postJson("/v1/chat/completions", body);
        assertEquals("assistant", r.at("/choices/0/message/role").asText());
        assertEquals(MODEL, r.get("model").asText(), "model may be left out");
    }

    @Test
    void stopStringCutsTheTextWhereItFirstAppears() {
        ObjectNode base = completion("The quick brown fox").put("temperature", 0).put("max_tokens", 40)
                .put("ignore_eos", true);
        String full = postJson("/v1/completions", base).at("/choices/0/text").asText();
        assertTrue(full.length() >= 6, "need some text to cut: " + full);
        String stop = full.substring(full.length() / 2, full.length() / 2 + 2);
        String expected = full.substring(0, full.indexOf(stop));

        ObjectNode withStop = base.deepCopy();
        withStop.putArray("stop").add(stop).add("never-in-this-text-\u2603");
        JsonNode r = postJson("/v1/completions", withStop);
        assertEquals(expected, r.at("/choices/0/text").asText());
        assertEquals("stop", r.at("/choices/0/finish_reason").asText());

        ObjectNode streamed = withStop.deepCopy().put("stream", true);
        List<JsonNode> events = sseJson(post("/v1/completions", streamed).body());
        assertEquals(expected, streamedText(events, 0));
        assertEquals("stop", finishReason(events, 0));

        ObjectNode single = base.deepCopy().put("stop", stop); // a plain string works too
        assertEquals(expected, postJson("/v1/completions", single).at("/choices/0/text").asText());
    }

    @Test
    void stopTokenIdEndsGenerationAtThatToken() {
        int[] prompt = {2, 40, 41, 42, 43};
        List<Integer> greedy = engineTokens(prompt, 12);
        int stopToken = greedy.get(3);
        int expectedTokens = greedy.indexOf(stopToken) + 1; // the stop token is generated, not shown
        ObjectNode body = JSON.createObjectNode().put("temperature", 0).put("max_tokens", 12).put("ignore_eos", true);
        addAll(body.putArray("prompt"), prompt);
        body.putArray("stop_token_ids").add(stopToken);
        JsonNode r = postJson("/v1/completions", body);
        assertEquals("stop", r.at("/choices/0/finish_reason").asText());
        assertEquals(expectedTokens, r.at("/usage/completion_tokens").asInt());
        assertEquals(prompt.length, r.at("/usage/prompt_tokens").asInt(), "token-id prompts are taken as they are");
    }

    @Test
    void minTokensHoldsOffStopTokens() {
        int[] prompt = {2, 50, 51, 52};
        int first = engineTokens(prompt, 1).getFirst();
        ObjectNode body = JSON.createObjectNode().put("temperature", 0).put("max_tokens", 8).put("ignore_eos", true);
        addAll(body.putArray("prompt"), prompt);
        body.putArray("stop_token_ids").add(first);
        assertEquals(1, postJson("/v1/completions", body).at("/usage/completion_tokens").asInt());
        body.put("min_tokens", 5);
        assertTrue(postJson("/v1/completions", body).at("/usage/completion_tokens").asInt() >= 5);
    }

    /** Greedy tokens straight from the engine, for comparison. */
    private List<Integer> engineTokens(int[] prompt, int max) {
        List<Integer> out = new ArrayList<>();
        for (GenerationChunk c : engine.generate(new GenerationRequest(prompt, SamplingParams.GREEDY,
                Penalties.NONE, max, 0, true, List.of(), Set.of(), true, -1)).subscribe().asIterable()) {
            out.addAll(c.tokenIds());
        }
        return out;
    }

    private static void addAll(ArrayNode array, int[] values) {
        for (int v : values) {
            array.add(v);
        }
    }

    @Test
    void nChoicesComeBackIndexedWithSummedUsage() {
        ObjectNode body = chat("Two answers").put("n", 2).put("max_tokens", 5).put("ignore_eos", true)
                .put("seed", 7).put("temperature", 1);
        JsonNode r = postJson("/v1/chat/completions", body);
        assertEquals(2, r.get("choices").size());
        assertEquals(0, r.at("/choices/0/index").asInt());
        assertEquals(1, r.at("/choices/1/index").asInt());
        assertEquals(10, r.at("/usage/completion_tokens").asInt(), "5 tokens per choice");
        JsonNode single = postJson("/v1/chat/completions", chat("Two answers").put("max_tokens", 5)
                .put("ignore_eos", true).put("seed", 7).put("temperature", 1));
        assertEquals(single.at("/usage/prompt_tokens").asInt(), r.at("/usage/prompt_tokens").asInt(),
                "the prompt counts once");

        ObjectNode streamed = body.deepCopy().put("stream", true);
        streamed.putObject("stream_options").put("include_usage", true);
        List<JsonNode> events = sseJson(post("/v1/chat/completions", streamed).body());
        Set<Integer> roles = new HashSet<>();
        for (JsonNode e : events) {
            for (JsonNode c : e.get("choices")) {
                if (c.at("/delta/role").asText().equals("assistant")) {
                    roles.add(c.get("index").asInt());
                }
            }
        }
        assertEquals(Set.of(0, 1), roles);
        assertEquals("length", finishReason(events, 0));
        assertEquals("length", finishReason(events, 1));
        assertEquals(r.at("/choices/0/message/content").asText(), streamedText(events, 0));
        assertEquals(r.at("/choices/1/message/content").asText(), streamedText(events, 1));
        assertEquals(10, events.getLast().at("/usage/completion_tokens").asInt());
    }

    @Test
    void aSeedMakesSamplingReproducible() {
        ObjectNode body = chat("Random words").put("temperature", 1).put("max_tokens", 16).put("ignore_eos", true)
                .put("seed", 1234);
        String a = postJson("/v1/chat/completions", body).at("/choices/0/message/content").asText();
        String b = postJson("/v1/chat/completions", body).at("/choices/0/message/content").asText();
        assertEquals(a, b);
        String other = postJson("/v1/chat/completions", body.deepCopy().put("seed", 99))
                .at("/choices/0/message/content").asText();
        assertNotEquals(a, other);
        // choice i of n runs with seed + i
        JsonNode two = postJson("/v1/chat/completions", body.deepCopy().put("n", 2).put("seed", 1233));
        assertEquals(a, two.at("/choices/1/message/content").asText());
    }

    @Test
    void chatLogprobsHaveOpenAiShape() {
        ObjectNode body = greedyChat("Logprobs please", 4).put("ignore_eos", true).put("logprobs", true)
                .put("top_logprobs", 3);
        JsonNode r = postJson("/v1/chat/completions", body);
        JsonNode content = r.at("/choices/0/logprobs/content");
        assertEquals(4, content.size());
        for (JsonNode t : content) {
            assertTrue(t.get("token").isTextual());
            assertTrue(t.get("logprob").asDouble() <= 0);
            assertTrue(t.get("bytes").isArray());
            assertEquals(3, t.get("top_logprobs").size());
            JsonNode best = t.get("top_logprobs").get(0);
            // greedy picks the most likely token
            assertEquals(best.get("logprob").asDouble(), t.get("logprob").asDouble(), 1e-6);
            assertTrue(best.get("logprob").asDouble() >= t.get("top_logprobs").get(2).get("logprob").asDouble());
        }
        List<JsonNode> events = sseJson(post("/v1/chat/completions", body.deepCopy().put("stream", true)).body());
        int streamedEntries = 0;
        for (JsonNode e : events) {
            JsonNode lp = e.at("/choices/0/logprobs");
            if (lp.isObject()) {
                streamedEntries += lp.get("content").size();
            }
        }
        assertEquals(4, streamedEntries);
        JsonNode without = postJson("/v1/chat/completions", greedyChat("Logprobs please", 2));
        assertTrue(without.at("/choices/0/logprobs").isNull());
    }

    @Test
    void completionLogprobsHaveTheLegacyShape() {
        ObjectNode body = completion("Once upon").put("temperature", 0).put("max_tokens", 5).put("ignore_eos", true)
                .put("logprobs", 2);
        JsonNode r = postJson("/v1/completions", body);
        JsonNode lp = r.at("/choices/0/logprobs");
        assertEquals(5, lp.get("tokens").size());
        assertEquals(5, lp.get("token_logprobs").size());
        assertEquals(5, lp.get("top_logprobs").size());
        assertEquals(5, lp.get("text_offset").size());
        int previous = 0;
        for (int i = 0; i < 5; i++) {
            assertTrue(lp.get("token_logprobs").get(i).asDouble() <= 0);
            assertTrue(lp.get("top_logprobs").get(i).size() >= 1 && lp.get("top_logprobs").get(i).size() <= 2);
            int offset = lp.get("text_offset").get(i).asInt();
            assertTrue(offset >= previous);
            previous = offset;
        }
        assertTrue(previous <= r.at("/choices/0/text").asText().length());
    }

    @Test
    void completionsStreamAndWholeAgree() {
        ObjectNode body = completion("In the beginning").put("temperature", 0).put("max_tokens", 9)
                .put("ignore_eos", true);
        JsonNode whole = postJson("/v1/completions", body);
        assertTrue(whole.get("id").asText().startsWith("cmpl-"));
        assertEquals("text_completion", whole.get("object").asText());
        assertEquals("length", whole.at("/choices/0/finish_reason").asText());
        assertEquals(9, whole.at("/usage/completion_tokens").asInt());
        int promptTokens = engine.tokenizer().encode("In the beginning").length + 1; // BOS
        assertEquals(promptTokens, whole.at("/usage/prompt_tokens").asInt());

        ObjectNode streamed = body.deepCopy().put("stream", true);
        streamed.putObject("stream_options").put("include_usage", true);
        HttpResponse<String> r = post("/v1/completions", streamed);
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<JsonNode> events = sseJson(r.body());
        for (JsonNode e : events) {
            assertEquals("text_completion", e.get("object").asText());
            assertEquals(whole.get("model").asText(), e.get("model").asText());
        }
        assertEquals(whole.at("/choices/0/text").asText(), streamedText(events, 0));
        assertEquals("length", finishReason(events, 0));
        assertEquals(0, events.getLast().get("choices").size());
        assertEquals(9, events.getLast().at("/usage/completion_tokens").asInt());
        assertEquals(promptTokens, events.getLast().at("/usage/prompt_tokens").asInt());
    }

    @Test
    void aListOfPromptsGivesChoicesPerPrompt() {
        ObjectNode body = JSON.createObjectNode().put("temperature", 0).put("max_tokens", 3).put("ignore_eos", true)
                .put("n", 2);
        body.putArray("prompt").add("first prompt").add("second");
        JsonNode r = postJson("/v1/completions", body);
        assertEquals(4, r.get("choices").size());
        for (int i = 0; i < 4; i++) {
            assertEquals(i, r.get("choices").get(i).get("index").asInt());
        }
        String first = postJson("/v1/completions", completion("first prompt").put("temperature", 0)
                .put("max_tokens", 3).put("ignore_eos", true)).at("/choices/0/text").asText();
        String second = postJson("/v1/completions", completion("second").put("temperature", 0)
                .put("max_tokens", 3).put("ignore_eos", true)).at("/choices/0/text").asText();
        assertEquals(List.of(first, first, second, second), List.of(r.at("/choices/0/text").asText(),
                r.at("/choices/1/text").asText(), r.at("/choices/2/text").asText(), r.at("/choices/3/text").asText()));
        int promptTokens = engine.tokenizer().encode("first prompt").length + engine.tokenizer().encode("second").length
                + 2;
        assertEquals(promptTokens, r.at("/usage/prompt_tokens").asInt());
        assertEquals(12, r.at("/usage/completion_tokens").asInt());
    }

    @Test
    void unknownFieldsAreIgnored() {
        ObjectNode body = greedyChat("Hi", 2).put("some_future_field", true).put("user", "someone");
        body.putObject("metadata").put("x", 1);
        body.putObject("response_format").put("type", "text");
        assertEquals(200, post("/v1/chat/completions", body).statusCode());
    }

    // ---- health and metrics ----

    @Test
    void healthProbesAreUpOnceLoaded() {
        given().get("/q/health/live").then().statusCode(200).body("status", equalTo("UP"));
        given().get("/q/health/ready").then().statusCode(200).body("status", equalTo("UP"));
        given().get("/q/health/started").then().statusCode(200).body("status", equalTo("UP"))
                .body("checks.find { it.name == 'model' }.data.model", equalTo(MODEL));
        given().get("/health_generate").then().statusCode(200).body("status", equalTo("ok"));
    }

    @Test
    void metricsServeEngineAndHttpMeters() {
        postJson("/v1/completions", completion("metrics").put("max_tokens", 2));
        String metrics = given().get("/q/metrics").then().statusCode(200).extract().asString();
        for (String name : List.of("jemma_generation_tokens_total", "jemma_prompt_tokens_total",
                "jemma_requests_total", "jemma_num_running_reqs", "jemma_kv_cache_usage",
                "jemma_time_to_first_token_seconds_bucket", "http_server_requests_seconds_count")) {
            assertTrue(metrics.contains(name), "missing " + name);
        }
        assertTrue(metrics.contains("uri=\"/v1/completions\""), "HTTP metrics by route");
        assertTrue(metrics.contains("jemma_aborted_requests_total"));
        // The attention backend in use labels every engine series (on the CPU: the CPU attention).
        for (String name : List.of("jemma_num_running_reqs", "jemma_generation_tokens_total",
                "jemma_time_to_first_token_seconds_count")) {
            assertTrue(java.util.regex.Pattern.compile("(?m)^" + name + "\\{[^}]*attention_backend=\"cpu\"")
                    .matcher(metrics).find(), name + " has no attention_backend=\"cpu\" label");
        }
    }
}
