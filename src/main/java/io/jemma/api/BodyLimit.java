package io.jemma.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jemma.api.dto.ErrorResponse;
import io.quarkus.runtime.configuration.MemorySize;
import io.vertx.ext.web.Router;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import org.eclipse.microprofile.config.inject.ConfigProperty;

import java.util.Optional;

/**
 * Answers a request whose Content-Length is above {@code quarkus.http.limits.max-body-size} with a 413
 * in OpenAI's error form, before Quarkus's own limit check (which answers with an empty body and closes
 * the connection; it still applies to chunked bodies that grow past the limit).
 */
@ApplicationScoped
public class BodyLimit {

    @ConfigProperty(name = "quarkus.http.limits.max-body-size")
    Optional<MemorySize> maxBodySize;

    @Inject
    ObjectMapper json;

    void install(@Observes Router router) throws JsonProcessingException {
        if (maxBodySize.isEmpty()) {
            return;
        }
        long limit = maxBodySize.get().asLongValue();
        String body = json.writeValueAsString(ErrorResponse.of("the request body is larger than " + limit + " bytes",
                "invalid_request_error", null, "request_too_large"));
        router.route().order(-3).handler(ctx -> {
            long declared = declaredLength(ctx.request().getHeader("Content-Length"));
            if (declared > limit) {
                // Answer at once and discard the body as it arrives, so a client still sending it reads
                // the 413 instead of a broken pipe; a body that goes on far past what it declared is cut off.
                long[] discarded = {0};
                ctx.request().handler(chunk -> {
                    discarded[0] += chunk.length();
                    if (discarded[0] > declared + limit) {
                        ctx.request().connection().close();
                    }
                });
                ctx.request().resume();
                ctx.response().setStatusCode(413).putHeader("Content-Type", "application/json").end(body);
                return;
            }
            ctx.next();
        });
    }

    private static long declaredLength(String header) {
        try {
            return header == null ? -1 : Long.parseLong(header.trim());
        } catch (NumberFormatException e) {
            return -1;
        }
    }
}
