package io.jemma.backend.cuda;

import jcuda.driver.CUresult;

/** Return-code checks for JCuda driver calls (JCuda's own exceptions stay off: we name the call). */
final class Cu {
    private Cu() {
    }

    /** Throws unless {@code result} is CUDA_SUCCESS. */
    static void check(int result, String call) {
        if (result != CUresult.CUDA_SUCCESS) {
            throw new CudaException(call + " failed: " + CUresult.stringFor(result) + " (" + result + ")");
        }
    }
}
