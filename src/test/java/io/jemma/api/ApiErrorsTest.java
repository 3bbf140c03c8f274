package io.jemma.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jemma.engine.InferenceEngine;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static io.jemma.api.ApiClient.JSON;
import static io.jemma.api.ApiClient.chat;
import static io.jemma.api.ApiClient.completion;
import static io.jemma.api.ApiClient.post;
import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.notNullValue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

/**
 * Bad input of every kind is a 4xx with an OpenAI error body naming the field, never a 5xx; and
 * afterwards the server still serves and holds no KV memory.
 */
@QuarkusTest
class ApiErrorsTest {
    private static final String CHAT = "/v1/chat/completions";
    private static final String COMPLETIONS = "/v1/completions";
    private static final String HI = "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]";

    @Inject
    InferenceEngine engine;

    @BeforeEach
    void loaded() {
        ApiClient.awaitLoaded(engine);
    }

    static Stream<Arguments> badRequests() {
        String longText = "a b c d ".repeat(1500);
        List<Arguments> cases = new ArrayList<>(List.of(
                // sampling
                bad(CHAT, "{" + HI + ",\"temperature\":-1}", 400, "temperature", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"temperature\":2.5}", 400, "temperature", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"temperature\":1e999}", 400, "temperature", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"temperature\":NaN}", 400, null, "invalid_json"),
                bad(CHAT, "{" + HI + ",\"temperature\":\"0.5\"}", 400, "temperature", "invalid_type"),
                bad(CHAT, "{" + HI + ",\"top_p\":0}", 400, "top_p", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"top_p\":1.01}", 400, "top_p", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"min_p\":-0.1}", 400, "min_p", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"min_p\":1.5}", 400, "min_p", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"top_k\":0}", 400, "top_k", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"top_k\":-2}", 400, "top_k", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"frequency_penalty\":2.5}", 400, "frequency_penalty", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"presence_penalty\":-3}", 400, "presence_penalty", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"repetition_penalty\":0}", 400, "repetition_penalty", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"repetition_penalty\":2.5}", 400, "repetition_penalty",
                        "invalid_value"),
                bad(CHAT, "{" + HI + ",\"seed\":1.5}", 400, "seed", "invalid_type"),
                // lengths
                bad(CHAT, "{" + HI + ",\"max_tokens\":0}", 400, "max_tokens", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"max_tokens\":-5}", 400, "max_tokens", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"max_completion_tokens\":0}", 400, "max_completion_tokens", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"max_tokens\":5000}", 400, "max_tokens", "context_length_exceeded"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"max_tokens\":4096}", 400, "max_tokens",
                        "context_length_exceeded"),
                bad(CHAT, "{" + HI + ",\"max_tokens\":99999999999}", 400, "max_tokens", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"max_tokens\":1.5}", 400, "max_tokens", "invalid_type"),
                bad(CHAT, "{" + HI + ",\"max_tokens\":5,\"min_tokens\":10}", 400, "min_tokens", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"min_tokens\":-1}", 400, "min_tokens", "invalid_value"),
                bad(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"" + longText + "\"}]}", 400, "messages",
                        "context_length_exceeded"),
                bad(COMPLETIONS, "{\"prompt\":\"" + longText + "\"}", 400, "prompt", "context_length_exceeded"),
                // messages
                bad(CHAT, "{\"messages\":[]}", 400, "messages", "invalid_value"),
                bad(CHAT, "{\"model\":\"tiny-31b\"}", 400, "messages", "invalid_value"),
                bad(CHAT, "{\"messages\":\"Hi\"}", 400, "messages", "invalid_type"),
                bad(CHAT, "{\"messages\":[\"Hi\"]}", 400, "messages[0]", "invalid_type"),
                bad(CHAT, "{\"messages\":[{\"role\":\"tool\",\"content\":\"Hi\"}]}", 400, "messages[0].role",
                        "invalid_value"),
                bad(CHAT, "{\"messages\":[{\"content\":\"Hi\"}]}", 400, "messages[0].role", "invalid_value"),
                bad(CHAT, "{\"messages\":[{\"role\":5,\"content\":\"Hi\"}]}", 400, "messages[0].role", "invalid_type"),
                bad(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, "messages[0].content",
                        "invalid_type"),
                bad(CHAT, "{\"messages\":[{\"role\":\"user\"}]}", 400, "messages[0].content", "invalid_value"),
                bad(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                        + "\"image_url\":{\"url\":\"http://x\"}}]}]}", 400, "messages[0].content[0].type",
                        "unsupported_value"),
                bad(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":7}]}]}", 400,
                        "messages[0].content[0].text", "invalid_type"),
                bad(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]}",
                        400, "messages", "invalid_value"),
                // n, stop
                bad(CHAT, "{" + HI + ",\"n\":0}", 400, "n", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"n\":1000}", 400, "n", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"stop\":5}", 400, "stop", "invalid_type"),
                bad(CHAT, "{" + HI + ",\"stop\":[\"a\",1]}", 400, "stop", "invalid_type"),
                bad(CHAT, "{" + HI + ",\"stop\":" + manyStops(17) + "}", 400, "stop", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"stop\":\"" + "x".repeat(1001) + "\"}", 400, "stop", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"stop_token_ids\":[-1]}", 400, "stop_token_ids", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"stop_token_ids\":[100000]}", 400, "stop_token_ids",
                        "invalid_value"),
                bad(CHAT, "{" + HI + ",\"stop_token_ids\":\"x\"}", 400, "stop_token_ids", "invalid_type"),
                // logprobs
                bad(CHAT, "{" + HI + ",\"logprobs\":true,\"top_logprobs\":21}", 400, "top_logprobs", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"logprobs\":true,\"top_logprobs\":-1}", 400, "top_logprobs", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"top_logprobs\":5}", 400, "top_logprobs", "invalid_value"),
                bad(CHAT, "{" + HI + ",\"logprobs\":\"yes\"}", 400, "logprobs", "invalid_type"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"logprobs\":6}", 400, "logprobs", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"logprobs\":-1}", 400, "logprobs", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"logprobs\":true}", 400, "logprobs", "invalid_type"),
                // other fields
                bad(CHAT, "{" + HI + ",\"response_format\":{\"type\":\"json_object\"}}", 400, "response_format",
                        "unsupported_value"),
                bad(CHAT, "{" + HI + ",\"response_format\":\"text\"}", 400, "response_format", "invalid_type"),
                bad(CHAT, "{" + HI + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", 400,
                        "tools", "unsupported_value"),
                bad(CHAT, "{" + HI + ",\"stream\":\"true\"}", 400, "stream", "invalid_type"),
                bad(CHAT, "{" + HI + ",\"stream_options\":\"x\"}", 400, "stream_options", "invalid_type"),
                bad(CHAT, "{" + HI + ",\"model\":7}", 400, "model", "invalid_type"),
                bad(CHAT, "{" + HI + ",\"model\":\"gpt-4o\"}", 404, "model", "model_not_found"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"model\":\"gpt-3.5-turbo-instruct\"}", 404, "model",
                        "model_not_found"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"echo\":true}", 400, "echo", "unsupported_value"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"suffix\":\"y\"}", 400, "suffix", "unsupported_value"),
                bad(COMPLETIONS, "{\"prompt\":\"x\",\"best_of\":3}", 400, "best_of", "unsupported_value"),
                // completions prompts
                bad(COMPLETIONS, "{\"max_tokens\":3}", 400, "prompt", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":5}", 400, "prompt", "invalid_type"),
                bad(COMPLETIONS, "{\"prompt\":[]}", 400, "prompt", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":[1,\"a\"]}", 400, "prompt", "invalid_type"),
                bad(COMPLETIONS, "{\"prompt\":[-1]}", 400, "prompt", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":[2,99999]}", 400, "prompt", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":[[]]}", 400, "prompt[0]", "invalid_type"),
                bad(COMPLETIONS, "{\"prompt\":" + manyStops(17) + "}", 400, "prompt", "invalid_value"),
                bad(COMPLETIONS, "{\"prompt\":[\"a\",\"b\",\"c\",\"d\"],\"n\":8}", 400, "n", "invalid_value"),
                // the body itself
                bad(CHAT, "{" + HI, 400, null, "invalid_json"),
                bad(CHAT, "{" + HI + "} trailing", 400, null, "invalid_json"),
                bad(COMPLETIONS, "", 400, null, "invalid_value"),
                bad(CHAT, "[1,2]", 400, null, "invalid_type"),
                bad(CHAT, "\"hello\"", 400, null, "invalid_type"),
                bad(COMPLETIONS, "null", 400, null, "invalid_value")));
        // a bad streamed request is a plain JSON error too
        cases.add(bad(CHAT, "{" + HI + ",\"stream\":true,\"temperature\":-1}", 400, "temperature", "invalid_value"));
        cases.add(bad(COMPLETIONS, "{\"prompt\":\"x\",\"stream\":true,\"model\":\"nope\"}", 404, "model",
                "model_not_found"));
        return cases.stream();
    }

    private static Arguments bad(String path, String body, int status, String param, String code) {
        String shown = body.length() > 90 ? body.substring(0, 90) + "..." : body;
        return arguments(path + " " + shown, path, body, status, param, code);
    }

    private static String manyStops(int count) {
        List<String> stops = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            stops.add("\"s" + i + "\"");
        }
        return "[" + String.join(",", stops) + "]";
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badRequests")
    void badRequestIsAnOpenAiError(String name, String path, String body, int status, String param, String code) {
        HttpResponse<String> r = post(path, body);
        assertEquals(status, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
        JsonNode error = ApiClient.parse(r.body()).get("error");
        assertTrue(error.get("message").asText().length() > 5, r.body());
        assertEquals("invalid_request_error", error.get("type").asText());
        assertEquals(param, error.get("param").isNull() ? null : error.get("param").asText(), r.body());
        assertEquals(code, error.get("code").asText(), r.body());
    }

    @Test
    void wrongContentTypeIs415() {
        for (String path : List.of(CHAT, COMPLETIONS)) {
            given().contentType("text/plain").body("{" + HI + "}").post(path).then().statusCode(415)
                    .body("error.type", equalTo("invalid_request_error"))
                    .body("error.code", equalTo("unsupported_media_type"));
        }
    }

    @Test
    void oversizedBodyIs413() {
        String body = "{\"prompt\":\"" + "a".repeat(5 * 1024 * 1024) + "\"}";
        given().contentType("application/json").body(body).post(COMPLETIONS).then().statusCode(413)
                .body("error.code", equalTo("request_too_large"));
    }

    @Test
    void invalidUtf8IsA400() throws Exception {
        byte[] prefix = "{\"messages\":[{\"role\":\"user\",\"content\":\"a".getBytes(StandardCharsets.UTF_8);
        byte[] suffix = "\"}]}".getBytes(StandardCharsets.UTF_8);
        byte[] body = new byte[prefix.length + 2 + suffix.length];
        System.arraycopy(prefix, 0, body, 0, prefix.length);
        body[prefix.length] = (byte) 0xC3;     // a lead byte followed by a non-continuation byte
        body[prefix.length + 1] = (byte) 0x28;
        System.arraycopy(suffix, 0, body, prefix.length + 2, suffix.length);
        given().contentType("application/json").body(body).post(CHAT).then().statusCode(400)
                .body("error.type", equalTo("invalid_request_error"));
        assertServing();
    }

    @Test
    void loneSurrogatesInContentAreA400() {
        for (String content : List.of("\\ud800", "a\\udc00b", "\\ud83d")) {
            given().contentType("application/json")
                    .body("{\"messages\":[{\"role\":\"user\",\"content\":\"" + content + "\"}]}")
                    .post(CHAT).then().statusCode(400)
                    .body("error.type", equalTo("invalid_request_error"))
                    .body("error.param", equalTo("messages[0].content"));
        }
        given().contentType("application/json").body("{\"prompt\":\"x\\udfff\"}").post(COMPLETIONS).then()
                .statusCode(400).body("error.param", equalTo("prompt"));
        assertServing();
    }

    @Test
    void deeplyNestedJsonIsA400() {
        // Sent with java.net.http: REST Assured's own handling of such a body exhausts the test's heap.
        String deep = "[".repeat(100_000) + "]".repeat(100_000);
        HttpResponse<String> r = ApiClient.post(CHAT, "{\"messages\":" + deep + "}");
        assertEquals(400, r.statusCode(), r.body());
        assertEquals("invalid_request_error", ApiClient.parse(r.body()).at("/error/type").asText());
        assertServing();
    }

    /** The server still answers a good request and holds no KV pages once idle. */
    private void assertServing() {
        given().contentType("application/json").body("{" + HI + ",\"max_tokens\":2}").post(CHAT).then()
                .statusCode(200);
        ApiClient.awaitIdle(engine);
    }

    @Test
    void unknownRouteAndMethodAreOpenAiErrors() {
        given().get("/v1/nothing-here").then().statusCode(404).body("error.message", notNullValue());
        given().delete("/v1/models").then().statusCode(405).body("error.message", notNullValue());
        given().contentType("application/json").body("{}").get(CHAT).then().statusCode(405);
    }

    /** Every field (and nested field) set to every kind of JSON value: 200 or a 4xx with an error body, never a 5xx. */
    @Test
    void noValueOfAnyFieldIsAServerError() {
        List<String> values = List.of("null", "true", "false", "0", "-1", "1", "2", "3.5", "1e308", "-1e308",
                "2147483648", "\"\"", "\"x\"", "[]", "[1]", "[\"a\"]", "{}", "{\"type\":1}", "[[1]]");
        List<String> fields = List.of("model", "messages", "prompt", "stream", "stream_options", "max_tokens",
                "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop", "seed",
                "frequency_penalty", "presence_penalty", "repetition_penalty", "logprobs", "top_logprobs",
                "response_format", "user", "min_tokens", "ignore_eos", "stop_token_ids", "skip_special_tokens",
                "echo", "suffix", "best_of", "tools");
        List<String> nested = List.of("/messages/0/role", "/messages/0/content", "/messages/0/name",
                "/messages/1", "/stream_options/include_usage", "/response_format/type", "/prompt/0", "/stop/0");
        for (String path : List.of(CHAT, COMPLETIONS)) {
            for (String value : values) {
                for (String field : fields) {
                    ObjectNode body = base(path);
                    body.set(field, ApiClient.parse(value));
                    assertNoServerError(path, body, field + "=" + value);
                }
                for (String pointer : nested) {
                    ObjectNode body = base(path);
                    int slash = pointer.lastIndexOf('/');
                    JsonNode parent = body.at(pointer.substring(0, slash));
                    String key = pointer.substring(slash + 1);
                    if (parent instanceof ObjectNode o) {
                        o.set(key, ApiClient.parse(value));
                    } else if (parent instanceof com.fasterxml.jackson.databind.node.ArrayNode a) {
                        a.add(ApiClient.parse(value));
                        a.set(Integer.parseInt(key), ApiClient.parse(value));
                    } else {
                        continue;
                    }
                    assertNoServerError(path, body, pointer + "=" + value);
                }
            }
        }
    }

    private static ObjectNode base(String path) {
        ObjectNode body = path.equals(CHAT) ? chat("Hi") : completion("Hi");
        body.put("max_tokens", 2);
        body.putObject("stream_options").put("include_usage", true);
        body.putObject("response_format").put("type", "text");
        body.putArray("stop").add("zzz");
        if (path.equals(COMPLETIONS)) {
            body.putArray("prompt").add("Hi");
        }
        return body;
    }

    private static void assertNoServerError(String path, ObjectNode body, String change) {
        HttpResponse<String> r = post(path, body);
        String what = path + " " + change + " -> " + r.statusCode() + " " + r.body();
        assertTrue(r.statusCode() == 200 || r.statusCode() >= 400 && r.statusCode() < 500, what);
        if (r.statusCode() != 200) {
            assertTrue(ApiClient.parse(r.body()).at("/error/message").isTextual(), what);
        }
    }

    @Test
    void afterBadRequestsTheServerStillServesAndHoldsNoKvMemory() {
        for (Arguments a : badRequests().toList()) {
            Object[] args = a.get();
            post((String) args[1], (String) args[2]);
        }
        JsonNode ok = ApiClient.postJson(CHAT, chat("Still there?").put("max_tokens", 3));
        assertEquals(1, ok.get("choices").size());
        ApiClient.awaitIdle(engine);
        assertEquals(0, engine.stats().kvPagesInUse());
        given().get("/q/health/ready").then().statusCode(200);
    }
}
