package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;

/**
 * An int array on the device at an address that stays put from step to step (the per-row inputs of a
 * forward, the attention metadata), so that a captured CUDA graph reads each step's new contents. Filled
 * from its own pinned staging with one async copy; the staging is rewritten only after that copy is done
 * (an event). Growing moves the array: the context's generation changes, and graphs recorded before are
 * no longer valid.
 */
final class StableInts implements AutoCloseable {
    private final CudaContext context;
    private final String name;
    private DeviceBuffer device;
    private PinnedBuffer staging;
    private int capacity;
    private int length;
    private final CUevent copied = new CUevent();
    private boolean pending;

    StableInts(CudaContext context, String name, int capacity) {
        this.context = context;
        this.name = name;
        Cu.check(cuEventCreate(copied, CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        allocate(Math.max(1, capacity));
    }

    private void allocate(int ints) {
        device = context.memory().allocatePermanent((long) ints * Integer.BYTES);
        if (staging != null) {
            staging.close();
        }
        staging = new PinnedBuffer((long) ints * Integer.BYTES);
        capacity = ints;
    }

    /** Copies {@code values[0, count)} to the device (asynchronously, in stream order). */
    void write(int[] values, int count) {
        if (context.capturing()) {
            throw new IllegalStateException(name + ": step inputs cannot be written during graph capture");
        }
        if (pending) {
            Cu.check(cuEventSynchronize(copied), "cuEventSynchronize");
            pending = false;
        }
        if (count > capacity) {
            allocate(Math.max(count, 2 * capacity));
            context.moved();
        }
        length = count;
        if (count == 0) {
            return;
        }
        MemorySegment.copy(values, 0, staging.segment(), ValueLayout.JAVA_INT_UNALIGNED, 0, count);
        Cu.check(cuMemcpyHtoDAsync(device.pointer(0), staging.at(0), (long) count * Integer.BYTES, context.stream()),
                "cuMemcpyHtoDAsync(" + name + ")");
        Cu.check(cuEventRecord(copied, context.stream()), "cuEventRecord");
        pending = true;
    }

    void write(int[] values) {
        write(values, values.length);
    }

    /** The device address (stable until the array has to grow). */
    long address() {
        return device.address();
    }

    /** Ints written by the last {@link #write}. */
    int length() {
        return length;
    }

    @Override
    public void close() {
        cuEventDestroy(copied);
        staging.close();
    }
}
