package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Small per-call inputs (token ids, positions, RoPE frequencies, row indices) on their way to the
 * device: a pinned arena and a device arena of the same size, filled at the same offsets. A slot is
 * reused only after the stream has been synchronized ({@link #reset()}, called by the context after
 * every synchronization), so no copy or kernel can still be reading it. The arrays one launch needs are
 * placed together ({@link #put}): should the arena be full, it is drained before any of them is
 * placed, so that none is overwritten before the launch.
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

    /**
     * Device copies of the given arrays (each an int[], a float[], or null), valid until the next
     * synchronization: their device addresses in order (0 for null).
     */
    long[] put(Object... arrays) {
        if (context.capturing()) {
            // The recorded copy would replay this step's values forever.
            throw new IllegalStateException("a host upload during CUDA graph capture (only the step's inputs, set by"
                    + " beginStep, can be replayed)");
        }
        long total = 0;
        for (Object a : arrays) {
            total += align(bytes(a));
        }
        if (total > host.bytes()) {
            throw new IllegalArgumentException("uploads of " + total + " bytes exceed the staging arena of "
                    + host.bytes());
        }
        if (align(used) + total > host.bytes()) {
            context.synchronize();          // resets this arena
        }
        long[] addresses = new long[arrays.length];
        for (int i = 0; i < arrays.length; i++) {
            addresses[i] = place(arrays[i]);
        }
        return addresses;
    }

    /** The device address of a copy of {@code values}, valid until the next synchronization. */
    long ints(int[] values) {
        return put((Object) values)[0];
    }

    /** Everything uploaded so far has been consumed (the stream was synchronized). */
    void reset() {
        used = 0;
    }

    private static long align(long bytes) {
        return (bytes + ALIGN - 1) / ALIGN * ALIGN;
    }

    private static long bytes(Object a) {
        return switch (a) {
            case null -> 0;
            case int[] i -> (long) i.length * Integer.BYTES;
            case float[] f -> (long) f.length * Float.BYTES;
            default -> throw new IllegalArgumentException("cannot upload " + a.getClass());
        };
    }

    private long place(Object a) {
        long bytes = bytes(a);
        if (a == null) {
            return 0;
        }
        long at = align(used);
        used = at + bytes;
        switch (a) {
            case int[] i -> MemorySegment.copy(i, 0, host.segment(), ValueLayout.JAVA_INT_UNALIGNED, at, i.length);
            case float[] f -> MemorySegment.copy(f, 0, host.segment(), ValueLayout.JAVA_FLOAT_UNALIGNED, at, f.length);
            default -> throw new IllegalArgumentException("cannot upload " + a.getClass());
        }
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
