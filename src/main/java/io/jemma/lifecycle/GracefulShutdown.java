package io.jemma.lifecycle;

import io.jemma.engine.EngineConfig;
import io.jemma.engine.InferenceEngine;
import io.quarkus.runtime.LaunchMode;
import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;
import sun.misc.Signal;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Drains before exiting on SIGTERM (what Kubernetes sends a pod it removes, and what a rolling update
 * does to every old pod).
 *
 * <p>The JVM's own SIGTERM handler starts the shutdown hooks at once: Quarkus stops, the HTTP server
 * closes, and the process exits with 143. This handler runs first instead: the engine stops admitting
 * requests (new ones get 503 with Retry-After, readiness goes down so the Service and load balancers
 * route elsewhere), the running and queued requests finish (their streams end with a finish_reason),
 * for at most {@code jemma.drain-timeout}; then Quarkus stops normally and the process exits with 0.
 * A second SIGTERM during the drain exits at once (status 143, no shutdown hooks).
 *
 * <p>Shutdowns that do not come through SIGTERM (SIGINT, {@code Quarkus.asyncExit}) drain too, in
 * {@code InferenceEngine}'s ShutdownEvent observer. Installed in production mode only (not in tests or
 * dev mode).
 */
@ApplicationScoped
public class GracefulShutdown {
    private static final Logger LOG = Logger.getLogger(GracefulShutdown.class);

    @Inject
    InferenceEngine engine;

    @Inject
    EngineConfig config;

    private final AtomicBoolean started = new AtomicBoolean();

    void onStart(@Observes StartupEvent event) {
        if (LaunchMode.current() != LaunchMode.NORMAL) {
            return;
        }
        try {
            Signal term = new Signal("TERM");
            Signal.handle(term, signal -> {
                if (!started.compareAndSet(false, true)) {
                    // The operator insists: no drain, no shutdown hooks (they would wait for the drain).
                    LOG.warn("second SIGTERM: exiting now, without waiting for the drain");
                    System.err.flush();
                    Runtime.getRuntime().halt(128 + 15);
                    return;
                }
                Thread drainer = new Thread(this::drainAndExit, "jemma-drain");
                drainer.setDaemon(true);
                drainer.start();
            });
        } catch (IllegalArgumentException | UnsupportedOperationException e) {
            LOG.warnf("cannot handle SIGTERM (%s): shutdowns drain in the ShutdownEvent only", e.getMessage());
        }
    }

    /** Drains the engine, then exits normally (status 0). */
    void drainAndExit() {
        Duration timeout = config.drainTimeout();
        var before = engine.stats();
        LOG.infof("SIGTERM: draining (%d running, %d queued), up to %ss; new requests get 503",
                before.running(), before.queued(), timeout.toMillis() / 1000.0);
        long start = System.nanoTime();
        boolean idle = engine.drain(timeout);
        long millis = (System.nanoTime() - start) / 1_000_000;
        if (idle) {
            LOG.infof("drained in %d ms; stopping", millis);
        } else {
            var after = engine.stats();
            LOG.warnf("drain timeout after %d ms: %d running and %d queued requests are cut", millis,
                    after.running(), after.queued());
        }
        Quarkus.asyncExit(0);
    }
}
