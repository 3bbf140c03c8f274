package io.jemma.api.health;

import io.jemma.engine.InferenceEngine;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** Readiness ({@code /q/health/ready}): the model is loaded, the server is not draining and the queue has room. */
@Readiness
@ApplicationScoped
public class EngineReadiness implements HealthCheck {

    @Inject
    InferenceEngine engine;

    @Override
    public HealthCheckResponse call() {
        var r = HealthCheckResponse.named("engine");
        if (!engine.loaded()) {
            return r.down().withData("reason", engine.loadFailure().isPresent() ? "the model failed to load"
                    : "the model is loading").build();
        }
        var stats = engine.stats();
        r.withData("running", stats.running()).withData("queued", stats.queued());
        if (engine.draining()) {
            return r.down().withData("reason", "draining").build();
        }
        if (engine.saturated()) {
            return r.down().withData("reason", "the request queue is full").build();
        }
        return r.up().build();
    }
}
