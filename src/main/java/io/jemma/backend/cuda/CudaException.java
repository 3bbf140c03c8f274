package io.jemma.backend.cuda;

/** A CUDA driver or cuBLASLt call that failed, with the call and the error's name. */
public final class CudaException extends RuntimeException {
    CudaException(String message) {
        super(message);
    }

    CudaException(String message, Throwable cause) {
        super(message, cause);
    }
}
