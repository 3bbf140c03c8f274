package io.jemma.backend.cuda;

/**
 * Device memory held by Java objects (tensors and their column views, weights, scratch). Activation
 * buffers go back to {@link DeviceMemory}'s cache when the last object referring to them is collected;
 * see there for why that is safe on one stream.
 */
final class DeviceBuffer {
    private final DeviceMemory.Block block;

    DeviceBuffer(DeviceMemory.Block block) {
        this.block = block;
    }

    /** The device address of byte 0. */
    long address() {
        return block.address();
    }

    /** Usable bytes (the block may be larger). */
    long bytes() {
        return block.requested();
    }

    /** A JCuda pointer {@code offset} bytes in, for driver calls (memcpy, memset). */
    jcuda.driver.CUdeviceptr pointer(long offset) {
        if (offset < 0 || offset > block.requested()) {
            throw new IndexOutOfBoundsException("offset " + offset + " of " + block.requested() + " bytes");
        }
        return block.pointer().withByteOffset(offset);
    }
}
