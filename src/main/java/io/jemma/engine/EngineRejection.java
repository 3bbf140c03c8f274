package io.jemma.engine;

/**
 * The engine refuses a request: the API turns it into an OpenAI error with this HTTP status.
 */
public class EngineRejection extends RuntimeException {
    private final int status;
    private final String code;
    private final String param;
    private final Integer retryAfterSeconds;

    public EngineRejection(int status, String code, String param, String message, Integer retryAfterSeconds) {
        super(message);
        this.status = status;
        this.code = code;
        this.param = param;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    /** 429: the queue is full. */
    public static EngineRejection queueFull(int queued) {
        return new EngineRejection(429, "rate_limit_exceeded", null,
                "the server is busy: " + queued + " requests are already waiting; retry later", 1);
    }

    /** 400: the prompt (plus max_tokens) does not fit the context or the KV memory. */
    public static EngineRejection tooLong(String param, String message) {
        return new EngineRejection(400, "context_length_exceeded", param, message, null);
    }

    /** 503: loading or draining. */
    public static EngineRejection unavailable(String message) {
        return new EngineRejection(503, "service_unavailable", null, message, 5);
    }

    public int status() {
        return status;
    }

    public String code() {
        return code;
    }

    public String param() {
        return param;
    }

    public Integer retryAfterSeconds() {
        return retryAfterSeconds;
    }
}
