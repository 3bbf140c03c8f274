package io.jemma.api;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import io.smallrye.config.WithName;

import java.time.Duration;

/** Settings of the HTTP layer (keys {@code jemma.api.<name>}, environment {@code JEMMA_API_<NAME>}). */
@ConfigMapping(prefix = "jemma.api")
public interface ApiConfig {

    /**
     * Liveness fails when the scheduler loop has not come round for this long (it comes round every
     * step, and at least once a second when idle). Raise it for models whose single step can take longer.
     */
    @WithName("liveness-timeout")
    @WithDefault("30s")
    Duration livenessTimeout();
}
