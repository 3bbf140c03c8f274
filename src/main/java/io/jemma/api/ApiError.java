package io.jemma.api;

/**
 * A request the API refuses, with what the OpenAI error body says about it: HTTP status, error type,
 * the request field at fault ({@code param}) and a short machine-readable code.
 */
public class ApiError extends RuntimeException {
    private final int status;
    private final String type;
    private final String param;
    private final String code;

    public ApiError(int status, String type, String param, String code, String message) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400: a field has a value the API does not accept. */
    public static ApiError invalid(String param, String message) {
        return new ApiError(400, "invalid_request_error", param, "invalid_value", message);
    }

    /** 400: a field has the wrong JSON type. */
    public static ApiError wrongType(String param, String message) {
        return new ApiError(400, "invalid_request_error", param, "invalid_type", message);
    }

    /** 400: the request asks for something this server does not do. */
    public static ApiError unsupported(String param, String message) {
        return new ApiError(400, "invalid_request_error", param, "unsupported_value", message);
    }

    /** 400: the prompt and max_tokens do not fit the context. */
    public static ApiError tooLong(String param, String message) {
        return new ApiError(400, "invalid_request_error", param, "context_length_exceeded", message);
    }

    /** 404: not the served model. */
    public static ApiError modelNotFound(String model) {
        return new ApiError(404, "invalid_request_error", "model", "model_not_found",
                "The model '" + model + "' does not exist");
    }

    public int status() {
        return status;
    }

    public String type() {
        return type;
    }

    public String param() {
        return param;
    }

    public String code() {
        return code;
    }
}
