package io.jemma.backend.cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * Activation memory of the forward pass, bump-allocated from chunks held for the backend's life and
 * rewound per step ({@link #reset()}) and per layer ({@link #mark()} / {@link #reset(long)}). The same
 * sequence of allocations gets the same addresses every step, which is what a captured CUDA graph needs:
 * its kernels keep the addresses they were recorded with. Reuse without waiting is safe because all work
 * goes to one stream in issue order.
 *
 * <p>An allocation that does not fit the rest of the current chunk moves on to the next chunk that has
 * room, or to a new chunk at the end; chunks are never freed (a graph may refer to any of them), so the
 * arena grows to the largest step's peak and stays there.
 */
final class ActivationArena {
    private static final long ALIGN = 256;
    private static final int OFFSET_BITS = 40;

    private final DeviceMemory memory;
    private final long chunkBytes;
    private final List<DeviceBuffer> chunks = new ArrayList<>();
    private int chunk;
    private long offset;
    private long reserved;

    ActivationArena(DeviceMemory memory, long chunkBytes) {
        this.memory = memory;
        this.chunkBytes = chunkBytes;
    }

    /** {@code bytes} of uninitialized device memory, valid until the arena is rewound past it. */
    DeviceBuffer allocate(long bytes) {
        long size = Math.max(ALIGN, (bytes + ALIGN - 1) / ALIGN * ALIGN);
        while (true) {
            if (chunk == chunks.size()) {
                DeviceBuffer c = memory.allocatePermanent(Math.max(chunkBytes, size));
                chunks.add(c);
                reserved += c.bytes();
            }
            DeviceBuffer c = chunks.get(chunk);
            if (offset + size <= c.bytes()) {
                DeviceBuffer b = c.slice(offset, bytes);
                offset += size;
                return b;
            }
            chunk++;
            offset = 0;
        }
    }

    /** Where the next allocation goes. */
    long mark() {
        return ((long) chunk << OFFSET_BITS) | offset;
    }

    /** Everything allocated after {@code mark} may be reused. */
    void reset(long mark) {
        chunk = (int) (mark >>> OFFSET_BITS);
        offset = mark & ((1L << OFFSET_BITS) - 1);
    }

    /** Everything may be reused (the start of a step). */
    void reset() {
        reset(0);
    }

    /** Device memory the arena holds. */
    long reservedBytes() {
        return reserved;
    }
}
