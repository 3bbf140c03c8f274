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
 * in OpenAI's error form, before Quarkus's own limit check (which answers with an empty body; it still
 * applies to chunked bodies that grow past the limit).
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
            String length = ctx.request().getHeader("Content-Length");
            long declared;
            try {
                declared = length == null ? -1 : Long.parseLong(length.trim());
            } catch (NumberFormatException e) {
                declared = -1;
            }
            if (declared > limit) {
                // the rest of the body is not read: close the connection once the answer is out
                ctx.response().endHandler(v -> ctx.request().connection().close());
                ctx.response().setStatusCode(413).putHeader("Content-Type", "application/json")
                        .putHeader("Connection", "close").end(body);
                return;
            }
            ctx.next();
        });
    }
}
