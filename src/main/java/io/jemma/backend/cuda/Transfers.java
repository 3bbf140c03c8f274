package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import java.lang.foreign.MemorySegment;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;

/**
 * Bulk copies between the heap (or mapped checkpoint files) and the device through one pinned buffer
 * in two halves: while one half's copy runs, Java fills the other. Each half has an event recorded
 * after its copy; Java waits on it before refilling that half.
 */
final class Transfers implements AutoCloseable {

    /** Fills {@code dst} (a half of the pinned buffer) with the bytes starting at {@code offset} of the source. */
    @FunctionalInterface
    interface Source {
        void fill(long offset, MemorySegment dst);
    }

    private final CudaContext context;
    private final PinnedBuffer pinned;
    private final long half;
    private final CUevent[] done = {new CUevent(), new CUevent()};
    private final boolean[] pending = new boolean[2];

    Transfers(CudaContext context, long bytes) {
        this.context = context;
        this.pinned = new PinnedBuffer(bytes);
        this.half = bytes / 2;
        for (CUevent e : done) {
            Cu.check(cuEventCreate(e, CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        }
    }

    /** Copies {@code bytes} produced by {@code source} to {@code dst + dstOffset}; returns before the last copy ends. */
    void upload(Source source, long bytes, DeviceBuffer dst, long dstOffset) {
        if (context.capturing()) {
            throw new IllegalStateException("a host upload during CUDA graph capture");
        }
        int h = 0;
        for (long off = 0; off < bytes; off += half, h ^= 1) {
            long n = Math.min(half, bytes - off);
            await(h);
            source.fill(off, pinned.segment().asSlice(h * half, n));
            Cu.check(cuMemcpyHtoDAsync(dst.pointer(dstOffset + off), pinned.at(h * half), n, context.stream()),
                    "cuMemcpyHtoDAsync");
            record(h);
        }
    }

    /** Copies {@code dst.byteSize()} bytes from {@code src + srcOffset} into {@code dst}; synchronous. */
    void download(DeviceBuffer src, long srcOffset, MemorySegment dst) {
        long bytes = dst.byteSize();
        for (long off = 0; off < bytes; off += half) {
            long n = Math.min(half, bytes - off);
            await(0);
            Cu.check(cuMemcpyDtoHAsync(pinned.at(0), src.pointer(srcOffset + off), n, context.stream()),
                    "cuMemcpyDtoHAsync");
            context.synchronize();
            MemorySegment.copy(pinned.segment(), 0, dst, off, n);
        }
    }

    private void await(int h) {
        if (pending[h]) {
            Cu.check(cuEventSynchronize(done[h]), "cuEventSynchronize");
            pending[h] = false;
        }
    }

    private void record(int h) {
        Cu.check(cuEventRecord(done[h], context.stream()), "cuEventRecord");
        pending[h] = true;
    }

    @Override
    public void close() {
        for (CUevent e : done) {
            cuEventDestroy(e);
        }
        pinned.close();
    }
}
