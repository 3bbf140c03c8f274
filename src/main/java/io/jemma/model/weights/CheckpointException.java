package io.jemma.model.weights;

/**
 * A checkpoint that cannot be used: a missing or malformed file, a missing tensor, a tensor of the wrong
 * shape or dtype. The message always names the file and, where one is involved, the tensor, because the
 * person reading it has to find the broken piece in a directory of many gigabytes.
 */
public class CheckpointException extends RuntimeException {

    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
