package io.jemma.tokenizer;

/** A tokenizer file that cannot be used: malformed JSON, unsupported component, inconsistent vocabulary. */
public class TokenizerException extends RuntimeException {

    public TokenizerException(String message) {
        super(message);
    }

    public TokenizerException(String message, Throwable cause) {
        super(message, cause);
    }
}
