package io.jemma.api.health;

import io.jemma.api.ApiConfig;
import io.jemma.engine.InferenceEngine;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Liveness;

import java.time.Duration;

/**
 * Liveness ({@code /q/health/live}): once the model is loaded, the scheduler thread must be alive and
 * its loop must have come round within {@code jemma.api.liveness-timeout}. While loading (or after a
 * failed load, which the startup probe reports) the process counts as live.
 */
@Liveness
@ApplicationScoped
public class SchedulerLiveness implements HealthCheck {

    @Inject
    InferenceEngine engine;

    @Inject
    ApiConfig config;

    @Override
    public HealthCheckResponse call() {
        var r = HealthCheckResponse.named("scheduler");
        if (!engine.loaded()) {
            return r.up().withData("state", "loading").build();
        }
        long silentMillis = Duration.ofNanos(engine.schedulerSilenceNanos()).toMillis();
        r.withData("silent_ms", silentMillis);
        if (!engine.schedulerAlive()) {
            return r.down().withData("reason", "the scheduler thread has stopped").build();
        }
        if (silentMillis > config.livenessTimeout().toMillis()) {
            return r.down().withData("reason", "the scheduler loop has not come round for " + silentMillis + " ms")
                    .build();
        }
        return r.up().build();
    }
}
