package io.jemma.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.exc.InputCoercionException;
import com.fasterxml.jackson.core.exc.StreamReadException;
import com.fasterxml.jackson.databind.DatabindException;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import io.jemma.api.dto.ErrorResponse;
import io.jemma.engine.EngineRejection;
import io.jemma.tokenizer.ChatTemplateException;
import jakarta.ws.rs.NotAllowedException;
import jakarta.ws.rs.NotFoundException;
import jakarta.ws.rs.NotSupportedException;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/**
 * Every failure of a REST call as an OpenAI error body. Bad input of any kind (malformed JSON, wrong
 * types, wrong content type, values out of range) is a 4xx naming the field where it can; only a bug
 * is a 500.
 */
public class ErrorMappers {
    private static final Logger LOG = Logger.getLogger(ErrorMappers.class);

    @ServerExceptionMapper
    public Response apiError(ApiError e) {
        return response(e.status(), Errors.body(e));
    }

    @ServerExceptionMapper
    public Response engineRejection(EngineRejection e) {
        Response.ResponseBuilder r = Response.status(e.status()).type(MediaType.APPLICATION_JSON)
                .entity(Errors.body(e));
        if (e.retryAfterSeconds() != null) {
            r.header("Retry-After", e.retryAfterSeconds());
        }
        return r.build();
    }

    @ServerExceptionMapper
    public Response chatTemplate(ChatTemplateException e) {
        return invalid("messages", "invalid_value", e.getMessage());
    }

    @ServerExceptionMapper
    public Response mismatchedInput(MismatchedInputException e) {
        return wrongType(e);
    }

    private static Response wrongType(MismatchedInputException e) {
        String param = path(e);
        String expected = e.getTargetType() == null ? "of another type" : typeName(e.getTargetType());
        return invalid(param, "invalid_type", (param == null ? "the request body" : param) + " must be " + expected);
    }

    @ServerExceptionMapper
    public Response json(JsonProcessingException e) {
        return jsonError(e);
    }

    @ServerExceptionMapper
    public Response illegalArgument(IllegalArgumentException e) {
        return invalid(null, "invalid_value", e.getMessage());
    }

    @ServerExceptionMapper
    public Response webApplication(WebApplicationException e) {
        if (e.getCause() instanceof JsonProcessingException j) {
            return jsonError(j);
        }
        int status = e.getResponse().getStatus();
        String code;
        String message;
        if (e instanceof NotSupportedException) {
            code = "unsupported_media_type";
            message = "Content-Type must be application/json";
        } else if (e instanceof NotFoundException) {
            code = "not_found";
            message = "no such endpoint";
        } else if (e instanceof NotAllowedException) {
            code = "method_not_allowed";
            message = "this endpoint does not take that HTTP method";
        } else {
            code = null;
            message = e.getMessage();
        }
        return response(status, ErrorResponse.of(message, Errors.type(status), null, code));
    }

    @ServerExceptionMapper
    public Response unexpected(Exception e) {
        LOG.error("request failed", e);
        return response(500, ErrorResponse.of("internal error: " + e, "server_error", null, "internal_error"));
    }

    private static Response jsonError(JsonProcessingException e) {
        if (e instanceof MismatchedInputException m) {
            return wrongType(m);
        }
        String param = e instanceof DatabindException d ? path(d) : null;
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof InputCoercionException c) { // a number too large for its field
                return invalid(param, "invalid_value", (param == null ? "a value" : param) + " is out of range: "
                        + c.getOriginalMessage());
            }
        }
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof StreamReadException r) {
                return invalid(null, "invalid_json", "the request body is not valid JSON: " + r.getOriginalMessage());
            }
        }
        return invalid(param, "invalid_value", "the request body could not be read: " + e.getOriginalMessage());
    }

    /** The field a Jackson error is about, as {@code messages[0].role}. */
    private static String path(DatabindException e) {
        if (!(e instanceof JsonMappingException jme) || jme.getPath().isEmpty()) {
            return null;
        }
        StringBuilder b = new StringBuilder();
        for (JsonMappingException.Reference ref : jme.getPath()) {
            if (ref.getFieldName() != null) {
                if (!b.isEmpty()) {
                    b.append('.');
                }
                b.append(ref.getFieldName());
            } else if (ref.getIndex() >= 0) {
                b.append('[').append(ref.getIndex()).append(']');
            }
        }
        return b.isEmpty() ? null : b.toString();
    }

    private static String typeName(Class<?> type) {
        if (type == String.class) {
            return "a string";
        }
        if (type == Integer.class || type == int.class || type == Long.class || type == long.class) {
            return "an integer";
        }
        if (type == Double.class || type == double.class || type == Float.class) {
            return "a number";
        }
        if (type == Boolean.class || type == boolean.class) {
            return "a boolean";
        }
        if (java.util.Collection.class.isAssignableFrom(type)) {
            return "a list";
        }
        return type.getName().startsWith("io.jemma.api.dto.") && type.isRecord() ? "a JSON object" : "of another type";
    }

    private static Response invalid(String param, String code, String message) {
        return response(400, ErrorResponse.of(message, "invalid_request_error", param, code));
    }

    private static Response response(int status, ErrorResponse body) {
        return Response.status(status).type(MediaType.APPLICATION_JSON).entity(body).build();
    }
}
