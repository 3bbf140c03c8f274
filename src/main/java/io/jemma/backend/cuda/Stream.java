package io.jemma.backend.cuda;

import jcuda.driver.CUstream;

/** A JCuda stream that tells its raw handle, for cuBLASLt's {@code cudaStream_t} argument. */
final class Stream extends CUstream {

    /** The CUstream handle as a native pointer value (the same object as a runtime cudaStream_t). */
    long handle() {
        return getNativePointer();
    }
}
