package io.jemma.model.config;

/** A {@code config.json} this engine cannot run: malformed, inconsistent, or asking for an unsupported feature. */
public class ConfigException extends RuntimeException {

    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
