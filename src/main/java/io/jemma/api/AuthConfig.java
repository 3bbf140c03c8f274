package io.jemma.api;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import io.smallrye.config.WithName;

import java.util.List;
import java.util.Optional;

/**
 * API keys, like sglang's and vLLM's {@code --api-key} (keys {@code jemma.api-key} and
 * {@code jemma.api-key-protects-metrics}; environment {@code JEMMA_API_KEY}, {@code JEMMA_API_KEY_PROTECTS_METRICS}).
 * See {@link ApiKeyFilter}.
 */
@ConfigMapping(prefix = "jemma")
public interface AuthConfig {

    /** One key or several, comma-separated; unset: no authentication. */
    @WithName("api-key")
    Optional<List<String>> apiKey();

    /** Whether {@code /q/metrics} needs a key too (health stays open either way). */
    @WithName("api-key-protects-metrics")
    @WithDefault("false")
    boolean apiKeyProtectsMetrics();
}
