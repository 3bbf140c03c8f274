package io.jemma.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jemma.api.dto.ErrorResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;

/**
 * When {@code jemma.api-key} is set, every {@code /v1/*} request must carry
 * {@code Authorization: Bearer <key>} with one of the keys; otherwise it is answered 401 in OpenAI's
 * error form with {@code WWW-Authenticate: Bearer}. Health ({@code /q/health/*}) and the deep check
 * ({@code /health_generate}, which load balancers call without credentials, as sglang's) stay open;
 * {@code /q/metrics} is open unless {@code jemma.api-key-protects-metrics=true}.
 *
 * <p>The comparison is over SHA-256 digests with {@link MessageDigest#isEqual}, against every key
 * without stopping early, so its time tells nothing of the keys' contents or lengths. Neither the
 * header nor the key is logged.
 */
@ApplicationScoped
public class ApiKeyFilter {

    @Inject
    AuthConfig config;

    @Inject
    ObjectMapper json;

    void install(@Observes Router router) throws JsonProcessingException {
        List<byte[]> digests = config.apiKey().orElse(List.of()).stream()
                .map(String::trim).filter(k -> !k.isEmpty()).map(ApiKeyFilter::sha256).toList();
        if (digests.isEmpty()) {
            return;
        }
        boolean metrics = config.apiKeyProtectsMetrics();
        String missing = json.writeValueAsString(ErrorResponse.of(
                "Missing API key: send it as 'Authorization: Bearer <key>'",
                "invalid_request_error", null, "invalid_api_key"));
        String wrong = json.writeValueAsString(ErrorResponse.of(
                "Incorrect API key provided", "invalid_request_error", null, "invalid_api_key"));
        router.route().order(-4).handler(ctx -> {
            if (!isProtected(ctx.normalizedPath(), metrics)) {
                ctx.next();
                return;
            }
            String key = bearer(ctx.request().getHeader("Authorization"));
            if (key == null) {
                refuse(ctx, missing);
            } else if (matches(digests, key)) {
                ctx.next();
            } else {
                refuse(ctx, wrong);
            }
        });
    }

    static boolean isProtected(String path, boolean metrics) {
        if (path.equals("/v1") || path.startsWith("/v1/")) {
            return true;
        }
        return metrics && (path.equals("/q/metrics") || path.startsWith("/q/metrics/"));
    }

    /** The token of a {@code Bearer} Authorization header; null when there is none. */
    static String bearer(String header) {
        if (header == null) {
            return null;
        }
        String h = header.trim();
        if (h.length() < 7 || !h.regionMatches(true, 0, "Bearer ", 0, 7)) {
            return null;
        }
        String token = h.substring(7).trim();
        return token.isEmpty() ? null : token;
    }

    static boolean matches(List<byte[]> digests, String key) {
        byte[] given = sha256(key);
        boolean ok = false;
        for (byte[] d : digests) {
            ok |= MessageDigest.isEqual(d, given);
        }
        return ok;
    }

    private static void refuse(RoutingContext ctx, String body) {
        // The request body is not read; let it arrive and be dropped so the client reads the 401.
        ctx.request().resume();
        ctx.response().setStatusCode(401)
                .putHeader("Content-Type", "application/json")
                .putHeader("WWW-Authenticate", "Bearer")
                .end(body);
    }

    static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
