package io.jemma.api;

import io.jemma.api.dto.ChatCompletionRequest;
import io.jemma.api.dto.CompletionRequest;
import io.jemma.api.dto.ModelInfo;
import io.jemma.api.dto.ModelList;
import io.jemma.engine.GenerationRequest;
import io.jemma.engine.InferenceEngine;
import io.jemma.engine.ModelCard;
import io.smallrye.common.annotation.Blocking;
import io.vertx.core.buffer.Buffer;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import org.jboss.resteasy.reactive.RestMulti;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * The OpenAI-compatible API: chat and text completions (streamed as Server-Sent Events when
 * {@code stream} is true) and the model list. Requests are checked here, field by field, before the
 * engine sees them; see {@link Validation} and {@link Prompts}.
 */
@Path("/v1")
public class OpenAiResource {

    @Inject
    InferenceEngine engine;

    @Inject
    Generator generator;

    @POST
    @Path("/chat/completions")
    @Consumes(MediaType.APPLICATION_JSON)
    @Blocking // the chat template and the tokenizer run here
    public RestMulti<Buffer> chat(ChatCompletionRequest body) {
        requireBody(body);
        String model = servedModel(body.model());
        if (body.responseFormat() != null && !"text".equals(body.responseFormat().type())) {
            throw ApiError.unsupported("response_format", "response_format type '" + body.responseFormat().type()
                    + "' is not supported; only 'text' is");
        }
        if (body.tools() != null && !body.tools().isNull() && !body.tools().isEmpty()) {
            throw ApiError.unsupported("tools", "tool calling is not supported by this server");
        }
        int topLogprobs = chatLogprobs(body);
        boolean fromCompletionTokens = body.maxCompletionTokens() != null;
        Settings settings = Validation.settings(body,
                fromCompletionTokens ? body.maxCompletionTokens() : body.maxTokens(),
                fromCompletionTokens ? "max_completion_tokens" : "max_tokens", topLogprobs,
                engine.vocabSize());
        int[] prompt = Prompts.chat(body.messages(), engine.chatTemplate(), engine.tokenizer());
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < settings.n(); i++) {
            requests.add(settings.forChoice(prompt, i, engine.contextLength(), engine.defaultMaxTokens(), "messages"));
        }
        Shape shape = new ChatShape("chatcmpl-" + randomId(), now(), model, topLogprobs >= 0);
        return generator.respond(requests, prompt.length, shape, settings, "messages");
    }

    /** -1 without logprobs, else top_logprobs (0 to 20). */
    private static int chatLogprobs(ChatCompletionRequest body) {
        Integer top = body.topLogprobs();
        if (top != null && (top < 0 || top > Limits.MAX_CHAT_TOP_LOGPROBS)) {
            throw ApiError.invalid("top_logprobs", "top_logprobs must be between 0 and "
                    + Limits.MAX_CHAT_TOP_LOGPROBS + ", got " + top);
        }
        if (!Boolean.TRUE.equals(body.logprobs())) {
            if (top != null && top > 0) {
                throw ApiError.invalid("top_logprobs", "top_logprobs needs logprobs set to true");
            }
            return -1;
        }
        return top == null ? 0 : top;
    }

    @POST
    @Path("/completions")
    @Consumes(MediaType.APPLICATION_JSON)
    @Blocking
    public RestMulti<Buffer> completions(CompletionRequest body) {
        requireBody(body);
        String model = servedModel(body.model());
        if (Boolean.TRUE.equals(body.echo())) {
            throw ApiError.unsupported("echo", "echo is not supported by this server");
        }
        if (body.suffix() != null && !body.suffix().isEmpty()) {
            throw ApiError.unsupported("suffix", "suffix is not supported by this server");
        }
        int n = body.n() == null ? 1 : body.n();
        if (body.bestOf() != null && body.bestOf() != n) {
            throw ApiError.unsupported("best_of", "best_of other than n is not supported by this server");
        }
        Integer logprobs = body.logprobs();
        if (logprobs != null && (logprobs < 0 || logprobs > Limits.MAX_COMPLETION_LOGPROBS)) {
            throw ApiError.invalid("logprobs", "logprobs must be between 0 and " + Limits.MAX_COMPLETION_LOGPROBS
                    + ", got " + logprobs);
        }
        int topLogprobs = logprobs == null ? -1 : logprobs;
        Settings settings = Validation.settings(body, body.maxTokens(), "max_tokens", topLogprobs,
                engine.vocabSize());
        List<int[]> prompts = Prompts.completion(body.prompt(), engine.tokenizer(), engine.vocabSize());
        if (prompts.size() * settings.n() > Limits.MAX_CHOICES) {
            throw ApiError.invalid("n", "prompts x n must be at most " + Limits.MAX_CHOICES + ", got "
                    + prompts.size() + " x " + settings.n());
        }
        List<GenerationRequest> requests = new ArrayList<>();
        int promptTokens = 0;
        for (int[] prompt : prompts) {
            promptTokens += prompt.length;
            for (int i = 0; i < settings.n(); i++) {
                requests.add(settings.forChoice(prompt, i, engine.contextLength(), engine.defaultMaxTokens(),
                        "prompt"));
            }
        }
        Shape shape = new CompletionShape("cmpl-" + randomId(), now(), model, topLogprobs >= 0);
        return generator.respond(requests, promptTokens, shape, settings, "prompt");
    }

    @GET
    @Path("/models")
    @Produces(MediaType.APPLICATION_JSON)
    public ModelList models() {
        return ModelList.of(List.of(info(engine.model())));
    }

    @GET
    @Path("/models/{id: .+}")
    @Produces(MediaType.APPLICATION_JSON)
    public ModelInfo model(@PathParam("id") String id) {
        ModelCard card = engine.model();
        if (!card.id().equals(id)) {
            throw ApiError.modelNotFound(id);
        }
        return info(card);
    }

    private static ModelInfo info(ModelCard card) {
        return new ModelInfo(card.id(), "model", card.created(), "jemma", card.contextLength(), card.contextLength(),
                card.id(), card.backend(), card.attentionBackend());
    }

    private static void requireBody(Object body) {
        if (body == null) {
            throw ApiError.invalid(null, "the request body is empty; send a JSON object");
        }
    }

    /** The served model's id; a request may leave model out, but naming another model is a 404. */
    private String servedModel(String requested) {
        String served = engine.model().id();
        if (requested != null && !requested.equals(served)) {
            throw ApiError.modelNotFound(requested);
        }
        return served;
    }

    private static long now() {
        return System.currentTimeMillis() / 1000;
    }

    private static String randomId() {
        return UUID.randomUUID().toString().replace("-", "");
    }
}
