package io.jemma.backend.cuda;

/**
 * Device memory held by Java objects (tensors and their column views, weights, scratch). Activation
 * buffers go back to {@link DeviceMemory}'s cache when the last object referring to them is collected;
 * see there for why that is safe on one stream. A buffer may also be a slice of a larger block (the
 * activation arena's), which then owns the memory.
 */
final class DeviceBuffer {
    private final DeviceMemory.Block block;
    private final long base;
    private final long bytes;

    DeviceBuffer(DeviceMemory.Block block) {
        this(block, 0, block.requested());
    }

    /** Bytes {@code [base, base + bytes)} of a block. */
    DeviceBuffer(DeviceMemory.Block block, long base, long bytes) {
        if (base < 0 || bytes < 0 || base + bytes > block.size()) {
            throw new IndexOutOfBoundsException("slice " + base + "+" + bytes + " of a block of " + block.size());
        }
        this.block = block;
        this.base = base;
        this.bytes = bytes;
    }

    /** The device address of byte 0. */
    long address() {
        return block.address() + base;
    }

    /** Usable bytes (the block may be larger). */
    long bytes() {
        return bytes;
    }

    /** Bytes {@code [offset, offset + length)} of this buffer, as a buffer of their own. */
    DeviceBuffer slice(long offset, long length) {
        if (offset < 0 || length < 0 || offset + length > bytes) {
            throw new IndexOutOfBoundsException("slice " + offset + "+" + length + " of " + bytes + " bytes");
        }
        return new DeviceBuffer(block, base + offset, length);
    }

    /** A JCuda pointer {@code offset} bytes in, for driver calls (memcpy, memset). */
    jcuda.driver.CUdeviceptr pointer(long offset) {
        if (offset < 0 || offset > bytes) {
            throw new IndexOutOfBoundsException("offset " + offset + " of " + bytes + " bytes");
        }
        return block.pointer().withByteOffset(base + offset);
    }
}
