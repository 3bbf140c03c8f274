package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;

import java.lang.ref.Cleaner;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import jcuda.driver.CUresult;

/**
 * Device memory for one {@link CudaContext}: weights (held until close) and a caching allocator for
 * activations, which the Backend interface never frees explicitly.
 *
 * <p>Activation blocks are returned when their {@link DeviceBuffer} becomes unreachable: a Cleaner
 * queues the block, and the engine thread moves queued blocks to per-size free lists on its next
 * allocation. Reusing a block without waiting is safe because all work goes to one stream in issue
 * order: every kernel that used the block was enqueued while the buffer was still reachable, so it
 * precedes whatever the new owner enqueues. cuMemAlloc (slow, synchronizing) is called only when a
 * free list is empty. Sizes are rounded to classes a quarter of a power of two apart (at most 25%
 * waste), at least 512 bytes.
 *
 * <p>The garbage collector does not see device memory, so when cuMemAlloc runs out this frees the
 * cached blocks, asks for a collection, waits briefly for the Cleaner and tries again. A per-step
 * arena (needed for CUDA graphs anyway) will replace this for the forward pass.
 *
 * <p>Not thread-safe: used from the context's one engine thread; only the Cleaner's enqueue is
 * concurrent.
 */
final class DeviceMemory implements AutoCloseable {

    /** One cuMemAlloc'd range; {@code requested} bytes of {@code size} are in use. */
    record Block(DevicePointer pointer, long address, long size, long requested) {
        Block withRequested(long bytes) {
            return new Block(pointer, address, size, bytes);
        }
    }

    private static final Cleaner CLEANER = Cleaner.create();
    private static final long MIN_BLOCK = 512;

    private final ConcurrentLinkedQueue<Block> released = new ConcurrentLinkedQueue<>();
    private final Map<Long, ArrayDeque<Block>> free = new HashMap<>();
    private final List<Block> permanent = new ArrayList<>();
    private long cachedBytes;
    private long liveBytes;
    private long permanentBytes;
    private final Runnable synchronize;
    private boolean closed;

    /** @param synchronize waits for the stream; run before cached blocks are given back to the driver */
    DeviceMemory(Runnable synchronize) {
        this.synchronize = synchronize;
    }

    /** An activation buffer of at least {@code bytes}, from the cache when one fits. Contents undefined. */
    DeviceBuffer allocate(long bytes) {
        drainReleased();
        long size = sizeClass(bytes);
        ArrayDeque<Block> list = free.get(size);
        Block block = list == null ? null : list.poll();
        if (block != null) {
            cachedBytes -= size;
        } else {
            block = allocateFromDriver(size);
        }
        block = block.withRequested(bytes);
        liveBytes += size;
        DeviceBuffer buffer = new DeviceBuffer(block);
        Block owned = block;
        CLEANER.register(buffer, () -> released.add(owned));
        return buffer;
    }

    /** A buffer held until {@link #close()} (weights, workspaces, the KV cache). */
    DeviceBuffer allocatePermanent(long bytes) {
        Block block = allocateFromDriver(Math.max(MIN_BLOCK, bytes)).withRequested(bytes);
        permanent.add(block);
        permanentBytes += block.size();
        return new DeviceBuffer(block);
    }

    long permanentBytes() {
        return permanentBytes;
    }

    long liveBytes() {
        return liveBytes;
    }

    long cachedBytes() {
        return cachedBytes;
    }

    /** The allocation size for a request: classes 1/4 of a power of two apart, at least 512 bytes. */
    static long sizeClass(long bytes) {
        if (bytes <= MIN_BLOCK) {
            return MIN_BLOCK;
        }
        long top = Long.highestOneBit(bytes - 1) << 1;     // next power of two >= bytes
        long step = top / 8;                                // quarters of the octave [top/2, top]
        return (bytes + step - 1) / step * step;
    }

    private void drainReleased() {
        Block b;
        while ((b = released.poll()) != null) {
            free.computeIfAbsent(b.size(), s -> new ArrayDeque<>()).add(b);
            cachedBytes += b.size();
            liveBytes -= b.size();
        }
    }

    private Block allocateFromDriver(long size) {
        DevicePointer p = new DevicePointer();
        int result = cuMemAlloc(p, size);
        if (result == CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
            // Give the cache back, let the collector find dead tensors, and try once more.
            releaseCached();
            System.gc();
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            drainReleased();
            releaseCached();
            result = cuMemAlloc(p, size);
        }
        Cu.check(result, "cuMemAlloc(" + size + " bytes; " + liveBytes + " live, " + permanentBytes + " held)");
        return new Block(p, p.address(), size, size);
    }

    /** Frees every cached block (after the stream has finished with them). */
    void releaseCached() {
        if (cachedBytes == 0) {
            return;
        }
        synchronize.run();
        for (ArrayDeque<Block> list : free.values()) {
            for (Block b : list) {
                Cu.check(cuMemFree(b.pointer()), "cuMemFree");
            }
        }
        free.clear();
        cachedBytes = 0;
    }

    /**
     * Frees the weights and the cache. Activation buffers still reachable are leaked to the context's
     * destruction (the primary context is released by the caller).
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        drainReleased();
        releaseCached();
        for (Block b : permanent) {
            cuMemFree(b.pointer());
        }
        permanent.clear();
    }
}
