package io.jemma.engine;

/**
 * What /v1/models says about the served model.
 *
 * @param id               the name clients send as {@code model}
 * @param created          unix seconds when it was loaded
 * @param contextLength    longest prompt + completion
 * @param backend          where it runs ("cpu", "cuda")
 * @param attentionBackend which attention implementation serves it
 */
public record ModelCard(String id, long created, int contextLength, String backend, String attentionBackend) {
}
