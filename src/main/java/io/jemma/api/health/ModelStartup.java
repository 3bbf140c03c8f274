package io.jemma.api.health;

import io.jemma.engine.InferenceEngine;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Startup;

/** Startup ({@code /q/health/started}): UP once the weights are loaded; DOWN while loading, or with the reason it failed. */
@Startup
@ApplicationScoped
public class ModelStartup implements HealthCheck {

    @Inject
    InferenceEngine engine;

    @Override
    public HealthCheckResponse call() {
        var r = HealthCheckResponse.named("model");
        if (engine.loaded()) {
            return r.up().withData("model", engine.modelId().orElse("")).build();
        }
        return engine.loadFailure()
                .map(e -> r.down().withData("error", String.valueOf(e.getMessage())).build())
                .orElseGet(() -> r.down().withData("state", "loading").build());
    }
}
