package io.jemma.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jemma.api.dto.CompletionRequest;
import io.jemma.tokenizer.Tokenizer;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Property-based (jqwik): random completions bodies, made of the request's real field names with
 * random JSON values, go through what the endpoint does before the engine (strict Jackson parsing,
 * {@link Validation#settings}, {@link Prompts#completion}, {@link Settings#forChoice}). Each is either
 * accepted or refused with an exception the API maps to a 4xx: never one that would be a 500.
 */
class ValidationProperties {
    private static final Tokenizer TOKENIZER = Tokenizer.load(Path.of("src/test/resources/golden/tiny-31b"));
    private static final ObjectMapper MAPPER = mapper();
    private static final JsonNodeFactory F = JsonNodeFactory.instance;
    private static final List<String> FIELDS = List.of("model", "prompt", "stream", "stream_options", "max_tokens",
            "temperature", "top_p", "top_k", "min_p", "n", "stop", "seed", "frequency_penalty", "presence_penalty",
            "repetition_penalty", "logprobs", "echo", "suffix", "best_of", "user", "min_tokens", "ignore_eos",
            "stop_token_ids", "skip_special_tokens", "unknown_field");

    private static ObjectMapper mapper() {
        ObjectMapper m = new ObjectMapper();
        new JsonSettings().customize(m);
        return m;
    }

    @Provide
    Arbitrary<JsonNode> scalar() {
        return Arbitraries.oneOf(
                Arbitraries.just(F.nullNode()),
                Arbitraries.of(true, false).map(F::booleanNode),
                Arbitraries.integers().between(-3, 70).map(F::numberNode),
                Arbitraries.integers().map(F::numberNode),
                Arbitraries.longs().map(F::numberNode),
                Arbitraries.bigIntegers().between(java.math.BigInteger.valueOf(Long.MIN_VALUE).shiftLeft(8),
                        java.math.BigInteger.valueOf(Long.MAX_VALUE).shiftLeft(8)).map(F::numberNode),
                Arbitraries.doubles().between(-5, 5).map(F::numberNode),
                Arbitraries.of(0.0, -0.0, 1e308, -1e308, 4.9e-324, 1.0, 2.0, 0.5).map(F::numberNode),
                Arbitraries.strings().ofMaxLength(12).map(F::textNode),
                Arbitraries.of("tiny-31b", "Hello", "", "\n", "<bos>", "text").map(F::textNode));
    }

    @Provide
    Arbitrary<JsonNode> value() {
        Arbitrary<JsonNode> scalar = scalar();
        Arbitrary<JsonNode> array = scalar.list().ofMaxSize(5).map(l -> {
            var a = F.arrayNode();
            l.forEach(a::add);
            return a;
        });
        Arbitrary<JsonNode> nested = array.list().ofMaxSize(3).map(l -> {
            var a = F.arrayNode();
            l.forEach(a::add);
            return a;
        });
        Arbitrary<JsonNode> object = Arbitraries.maps(Arbitraries.of("include_usage", "type", "x"), scalar)
                .ofMaxSize(2).map(m -> {
                    ObjectNode o = F.objectNode();
                    m.forEach(o::set);
                    return o;
                });
        return Arbitraries.frequencyOf(net.jqwik.api.Tuple.of(6, scalar), net.jqwik.api.Tuple.of(2, array),
                net.jqwik.api.Tuple.of(1, nested), net.jqwik.api.Tuple.of(1, object));
    }

    @Provide
    Arbitrary<String> body() {
        Arbitrary<Map<String, JsonNode>> fields = Arbitraries.maps(Arbitraries.of(FIELDS), value()).ofMaxSize(10);
        return fields.map(m -> {
            ObjectNode o = F.objectNode();
            // Most bodies name the model and a prompt, so that validation gets past the first checks.
            o.put("model", "tiny-31b");
            o.put("prompt", "Hi");
            m.forEach(o::set);
            return o.toString();
        });
    }

    @Property(tries = 5000)
    void aRandomBodyIsAcceptedOrA4xx(@ForAll("body") String json) {
        try {
            CompletionRequest body = MAPPER.readValue(json, CompletionRequest.class);
            int topLogprobs = body.logprobs() == null ? -1 : body.logprobs();
            if (topLogprobs > Limits.MAX_COMPLETION_LOGPROBS) {
                return; // the resource refuses this with a 400 before Validation
            }
            Settings settings = Validation.settings(body, body.maxTokens(), "max_tokens", Math.max(-1, topLogprobs),
                    TOKENIZER.vocabSize());
            if (body.prompt() == null) {
                return; // the resource refuses a missing prompt with a 400
            }
            for (int[] prompt : Prompts.completion(body.prompt(), TOKENIZER, TOKENIZER.vocabSize())) {
                for (int i = 0; i < Math.min(settings.n(), 4); i++) {
                    settings.forChoice(prompt, i, 4096, 512, "prompt");
                }
            }
        } catch (ApiError e) {
            if (e.status() < 400 || e.status() >= 500) {
                throw new AssertionError(json + " -> " + e.status() + " " + e.getMessage());
            }
        } catch (JsonProcessingException | IllegalArgumentException e) {
            // 400 (ErrorMappers)
        } catch (RuntimeException e) {
            throw new AssertionError(json + " -> would be a 500", e);
        }
    }
}
