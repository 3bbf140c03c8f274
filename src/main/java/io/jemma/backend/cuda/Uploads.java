package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import java.lang.foreign.ValueLayout;

/**
 * Small per-call inputs (token ids, positions, RoPE frequencies, row indices) on their way to the
 * device: a pinned arena and a device arena of the same size, filled at the same offsets. A slot is
 * reused only after the stream has been synchronized ({@link #reset()}, called by the context after
 * every synchronization), so no copy or kernel can still be reading it.
 */
final class Uploads implements AutoCloseable {
    private static final long ALIGN = 256;

    private final CudaContext context;
    private final PinnedBuffer host;
    private final DeviceBuffer device;
    private long used;

    Uploads(CudaContext context, long bytes) {
        this.context = context;
        this.host = new PinnedBuffer(bytes);
        this.device = context.memory().allocatePermanent(bytes);
    }

    /** The device address of a copy of {@code values}, valid until the next synchronization. */
    long ints(int[] values) {
        long bytes = (long) values.length * Integer.BYTES;
        long at = reserve(bytes);
        java.lang.foreign.MemorySegment.copy(values, 0, host.segment(), ValueLayout.JAVA_INT_UNALIGNED, at, values.length);
        return copy(at, bytes);
    }

    /** The device address of a copy of {@code values}, valid until the next synchronization. */
    long floats(float[] values) {
        long bytes = (long) values.length * Float.BYTES;
        long at = reserve(bytes);
        java.lang.foreign.MemorySegment.copy(values, 0, host.segment(), ValueLayout.JAVA_FLOAT_UNALIGNED, at, values.length);
        return copy(at, bytes);
    }

    /** Everything uploaded so far has been consumed (the stream was synchronized). */
    void reset() {
        used = 0;
    }

    private long reserve(long bytes) {
        if (bytes > host.bytes()) {
            throw new IllegalArgumentException("upload of " + bytes + " bytes exceeds the staging arena of "
                    + host.bytes());
        }
        long at = (used + ALIGN - 1) / ALIGN * ALIGN;
        if (at + bytes > host.bytes()) {
            context.synchronize();          // resets this arena
            at = 0;
        }
        used = at + bytes;
        return at;
    }

    private long copy(long at, long bytes) {
        if (bytes > 0) {
            Cu.check(cuMemcpyHtoDAsync(device.pointer(at), host.at(at), bytes, context.stream()),
                    "cuMemcpyHtoDAsync(upload)");
        }
        return device.address() + at;
    }

    @Override
    public void close() {
        host.close();
    }
}
