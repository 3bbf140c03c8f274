package io.jemma.tokenizer;

/**
 * A chat prompt could not be built: the checkpoint has no chat template, the template is broken,
 * or it refused the conversation through {@code raise_exception(...)} (whose message this carries).
 */
public class ChatTemplateException extends RuntimeException {

    public ChatTemplateException(String message) {
        super(message);
    }

    public ChatTemplateException(String message, Throwable cause) {
        super(message, cause);
    }
}
