package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemAllocHost;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;

import java.lang.foreign.MemorySegment;
import jcuda.Pointer;

/**
 * Page-locked host memory: the only host memory an async copy really overlaps with (from pageable
 * memory the driver stages through its own buffer and blocks). Java writes it through a
 * MemorySegment; the driver reads it through the JCuda pointer.
 */
final class PinnedBuffer implements AutoCloseable {
    private final Pointer pointer = new Pointer();
    private final MemorySegment segment;

    PinnedBuffer(long bytes) {
        Cu.check(cuMemAllocHost(pointer, bytes), "cuMemAllocHost(" + bytes + ")");
        segment = MemorySegment.ofBuffer(pointer.getByteBuffer(0, bytes));
    }

    MemorySegment segment() {
        return segment;
    }

    long bytes() {
        return segment.byteSize();
    }

    /** The host pointer {@code offset} bytes in, for cuMemcpy*Async. */
    Pointer at(long offset) {
        return pointer.withByteOffset(offset);
    }

    @Override
    public void close() {
        cuMemFreeHost(pointer);
    }
}
