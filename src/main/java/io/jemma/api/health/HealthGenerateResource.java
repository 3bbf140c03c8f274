package io.jemma.api.health;

import io.jemma.engine.EngineConfig;
import io.jemma.engine.GenerationChunk;
import io.jemma.engine.GenerationRequest;
import io.jemma.engine.InferenceEngine;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;

import java.util.Map;

/**
 * The deep health check ({@code GET /health_generate}, as sglang has it): generates one greedy token
 * through the whole engine. 200 when it came within {@code jemma.health-generate-timeout}, 503
 * otherwise (still loading, draining, queue full, too slow or failing).
 */
@Path("/health_generate")
public class HealthGenerateResource {

    @Inject
    InferenceEngine engine;

    @Inject
    EngineConfig config;

    @GET
    @Produces(MediaType.APPLICATION_JSON)
    public Uni<Response> check() {
        int[] prompt;
        try {
            prompt = new int[] {engine.tokenizer().bosId().orElse(2)};
            return engine.generate(GenerationRequest.greedy(prompt, 1))
                    .collect().last()
                    .ifNoItem().after(config.healthGenerateTimeout()).fail()
                    .map(HealthGenerateResource::result)
                    .onFailure().recoverWithItem(e -> down(describe(e)));
        } catch (RuntimeException e) { // not loaded, draining
            return Uni.createFrom().item(down(e.getMessage()));
        }
    }

    private static Response result(GenerationChunk last) {
        if (last == null || last.completionTokens() < 1) {
            return down("no token was generated");
        }
        return Response.ok(Map.of("status", "ok", "tokens", last.completionTokens())).build();
    }

    private static String describe(Throwable e) {
        return e instanceof io.smallrye.mutiny.TimeoutException ? "no token within the timeout" : e.getMessage();
    }

    private static Response down(String reason) {
        return Response.status(503).entity(Map.of("status", "unavailable", "reason", String.valueOf(reason)))
                .build();
    }
}
