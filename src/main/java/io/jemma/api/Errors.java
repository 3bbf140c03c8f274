package io.jemma.api;

import io.jemma.api.dto.ErrorResponse;
import io.jemma.engine.EngineRejection;

/** OpenAI error bodies for the failures that can reach a client. */
final class Errors {
    private Errors() {
    }

    static ErrorResponse body(ApiError e) {
        return ErrorResponse.of(e.getMessage(), e.type(), e.param(), e.code());
    }

    static ErrorResponse body(EngineRejection e) {
        return ErrorResponse.of(e.getMessage(), type(e.status()), e.param(), e.code());
    }

    /** The error type OpenAI uses for an HTTP status. */
    static String type(int status) {
        if (status == 429) {
            return "rate_limit_error";
        }
        if (status == 503) {
            return "service_unavailable_error";
        }
        return status >= 500 ? "server_error" : "invalid_request_error";
    }

    /** What a stream says when it fails after its first event. */
    static ErrorResponse inStream(Throwable t) {
        if (t instanceof EngineRejection r) {
            return body(r);
        }
        if (t instanceof ApiError a) {
            return body(a);
        }
        return ErrorResponse.of("generation failed: " + t.getMessage(), "server_error", null, "internal_error");
    }
}
