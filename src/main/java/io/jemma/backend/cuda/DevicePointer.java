package io.jemma.backend.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * A JCuda device pointer that also tells its raw address, which kernel arguments and cuBLASLt (called
 * through java.lang.foreign) need. JCuda keeps the address in a protected field; a subclass may read it.
 */
final class DevicePointer extends CUdeviceptr {

    /** The device address (0 before allocation). */
    long address() {
        return getNativePointer() + getByteOffset();
    }
}
