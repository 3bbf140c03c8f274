package io.jemma.backend.cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * Scratch device memory that only grows: a request larger than the current buffer gets a new one (at
 * least twice as large), and the old one stays allocated, because a captured CUDA graph may still write
 * to the address it saw when it was recorded.
 */
final class GrowOnlyWorkspace {
    private static final long FIRST = 1L << 20;

    private final CudaContext context;
    /** New buffers are filled with zeros on the stream before any later work (counters kernels reset). */
    private final boolean zeroed;
    private DeviceBuffer current;
    private final List<DeviceBuffer> retired = new ArrayList<>();

    GrowOnlyWorkspace(CudaContext context) {
        this(context, false);
    }

    GrowOnlyWorkspace(CudaContext context, boolean zeroed) {
        this.context = context;
        this.zeroed = zeroed;
    }

    /** A buffer of at least {@code bytes}. */
    DeviceBuffer atLeast(long bytes) {
        if (current == null || current.bytes() < bytes) {
            if (current != null) {
                retired.add(current);
            }
            current = context.memory().allocatePermanent(Math.max(bytes, current == null ? FIRST : 2 * current.bytes()));
            if (zeroed) {
                context.fill32(current, 0, current.bytes() / Integer.BYTES, 0);
            }
        }
        return current;
    }
}
