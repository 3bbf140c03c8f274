package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;
import static jcuda.driver.JCudaDriver.cuOccupancyMaxActiveBlocksPerMultiprocessor;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.CUstream_flags;

/**
 * One GPU as the CUDA backend uses it, through JCuda's driver API: the device's primary context (the one
 * the CUDA runtime, and so cuBLASLt, also uses), one stream that all work goes to in issue order, the
 * kernel module loaded from the fatbin resource, device memory, and pinned staging for copies.
 *
 * <p><b>Threading rule.</b> A context is used by one thread at a time (the model loader, then the
 * engine's scheduler thread); calls never overlap. The driver's current context is per thread, so
 * every entry point calls {@link #enter()}, which makes the primary context current the first time a
 * thread comes in. The allocator and staging arenas are not synchronized; handing the backend from one
 * thread to another must happen-before (thread start/join, a queue), as the engine does.
 *
 * <p>Errors: every driver call's result is checked. Kernel launches report configuration errors at
 * once; faults inside a kernel surface at the next synchronizing call. With
 * {@code -Djemma.cuda.debugSync=true} every launch is followed by a stream synchronization, so a fault
 * is reported at the launch that caused it (tests run that way).
 */
final class CudaContext implements AutoCloseable {

    static final String FATBIN_RESOURCE = "/cuda/jemma_kernels.fatbin";
    private static final long UPLOAD_ARENA = 8L << 20;
    private static final long TRANSFER_BUFFER = 64L << 20;

    private final DeviceInfo info;
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final Stream stream = new Stream();
    private final CUmodule module = new CUmodule();
    private final Map<String, CUfunction> functions = new HashMap<>();
    /** Per kernel: the dynamic shared memory it was allowed beyond the default 48 KB. */
    private final Map<String, Integer> sharedAllowed = new HashMap<>();
    private final ThreadLocal<Boolean> currentHere = new ThreadLocal<>();
    private boolean debugSync = Boolean.getBoolean("jemma.cuda.debugSync");
    private final DeviceMemory memory;
    private final Uploads uploads;
    private final Transfers transfers;
    private boolean closed;
    private boolean capturing;
    /** Bumped whenever a fixed-address step buffer moves: graphs recorded before are stale. */
    private long generation;

    CudaContext(int ordinal) {
        Cu.check(cuInit(0), "cuInit");
        Cu.check(cuDeviceGet(device, ordinal), "cuDeviceGet(" + ordinal + ")");
        info = describe(ordinal, device);
        Cu.check(cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain");
        Cu.check(cuCtxSetCurrent(context), "cuCtxSetCurrent");
        currentHere.set(Boolean.TRUE);
        Cu.check(cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        Cu.check(cuModuleLoadData(module, readFatbin()), "cuModuleLoadData(" + FATBIN_RESOURCE + ")");
        memory = new DeviceMemory(this::synchronizeStream);
        uploads = new Uploads(this, UPLOAD_ARENA);
        transfers = new Transfers(this, TRANSFER_BUFFER);
    }

    static DeviceInfo describe(int ordinal, CUdevice device) {
        byte[] name = new byte[256];
        Cu.check(cuDeviceGetName(name, name.length, device), "cuDeviceGetName");
        int end = 0;
        while (end < name.length && name[end] != 0) {
            end++;
        }
        long[] total = new long[1];
        Cu.check(cuDeviceTotalMem(total, device), "cuDeviceTotalMem");
        int[] driver = new int[1];
        Cu.check(cuDriverGetVersion(driver), "cuDriverGetVersion");
        return new DeviceInfo(ordinal, new String(name, 0, end, StandardCharsets.US_ASCII),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT), total[0], driver[0]);
    }

    private static int attribute(CUdevice device, int attribute) {
        int[] value = new int[1];
        Cu.check(cuDeviceGetAttribute(value, attribute, device), "cuDeviceGetAttribute(" + attribute + ")");
        return value[0];
    }

    static byte[] readFatbin() {
        try (InputStream in = CudaContext.class.getResourceAsStream(FATBIN_RESOURCE)) {
            if (in == null) {
                throw new CudaException("no kernel fatbin on the classpath (" + FATBIN_RESOURCE
                        + "): the build found no nvcc");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new CudaException("reading " + FATBIN_RESOURCE, e);
        }
    }

    DeviceInfo info() {
        return info;
    }

    Stream stream() {
        return stream;
    }

    DeviceMemory memory() {
        return memory;
    }

    Uploads uploads() {
        return uploads;
    }

    Transfers transfers() {
        return transfers;
    }

    /** Makes the primary context current on the calling thread (once per thread; see the threading rule). */
    void enter() {
        if (closed) {
            throw new IllegalStateException("the CUDA backend is closed");
        }
        if (currentHere.get() == null) {
            Cu.check(cuCtxSetCurrent(context), "cuCtxSetCurrent");
            currentHere.set(Boolean.TRUE);
        }
    }

    /** A kernel of the fatbin by its extern "C" name. */
    CUfunction function(String name) {
        CUfunction f = functions.get(name);
        if (f == null) {
            f = new CUfunction();
            Cu.check(cuModuleGetFunction(f, module, name), "cuModuleGetFunction(" + name + ")");
            functions.put(name, f);
        }
        return f;
    }

    /** Launches {@code kernel} on the stream: grid (gx, gy), blockX threads, no dynamic shared memory. */
    void launch(String kernel, int gx, int gy, int blockX, KernelArgs args) {
        launch(kernel, gx, gy, 1, blockX, 0, args);
    }

    /** Whether work is being recorded into a graph (host uploads are refused then). */
    boolean capturing() {
        return capturing;
    }

    /** A fixed-address buffer moved: graphs recorded so far refer to stale addresses. */
    void moved() {
        generation++;
    }

    long generation() {
        return generation;
    }

    /** {free, total} bytes of device memory (the driver's view: other processes count too). */
    long[] memoryInfo() {
        long[] free = new long[1];
        long[] total = new long[1];
        Cu.check(cuMemGetInfo(free, total), "cuMemGetInfo");
        return new long[] {free[0], total[0]};
    }

    /**
     * Launches {@code kernel} on the stream with a 3-D grid and {@code sharedBytes} of dynamic shared
     * memory (above 48 KB the kernel is first allowed that much, once).
     */
    void launch(String kernel, int gx, int gy, int gz, int blockX, int sharedBytes, KernelArgs args) {
        if (gx <= 0 || gy <= 0 || gz <= 0) {
            return;
        }
        CUfunction f = allowShared(kernel, sharedBytes);
        Cu.check(cuLaunchKernel(f, gx, gy, gz, blockX, 1, 1, sharedBytes, stream, args.build(), null),
                "cuLaunchKernel(" + kernel + ", grid " + gx + "x" + gy + "x" + gz + ", block " + blockX + ", shared "
                        + sharedBytes + ")");
        if (debugSync) {
            Cu.check(cuStreamSynchronize(stream), "kernel " + kernel);
        }
    }

    /** Blocks of {@code kernel} that fit on one SM at once with this block size and dynamic shared memory. */
    int occupancy(String kernel, int blockX, int sharedBytes) {
        int[] blocks = new int[1];
        Cu.check(cuOccupancyMaxActiveBlocksPerMultiprocessor(blocks, allowShared(kernel, sharedBytes), blockX,
                sharedBytes), "cuOccupancyMaxActiveBlocksPerMultiprocessor(" + kernel + ")");
        return blocks[0];
    }

    private CUfunction allowShared(String kernel, int sharedBytes) {
        CUfunction f = function(kernel);
        if (sharedBytes > 48 * 1024 && sharedAllowed.getOrDefault(kernel, 0) < sharedBytes) {
            Cu.check(cuFuncSetAttribute(f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    sharedBytes), "cuFuncSetAttribute(" + kernel + ", " + sharedBytes + " bytes of shared memory)");
            sharedAllowed.put(kernel, sharedBytes);
        }
        return f;
    }

    /**
     * Captures the work {@code body} issues on the stream into an instantiated graph. Relaxed capture
     * mode: an allocation from the driver during capture (the cache was empty) is allowed; per-launch
     * synchronization is suspended, since a capturing stream cannot be synchronized.
     */
    CudaGraph capture(Runnable body) {
        synchronize();
        boolean sync = debugSync;
        debugSync = false;
        long recordedAt = generation;
        CUgraph graph = new CUgraph();
        Cu.check(cuStreamBeginCapture(stream, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED),
                "cuStreamBeginCapture");
        capturing = true;
        try {
            body.run();
        } catch (RuntimeException | Error e) {
            capturing = false;
            cuStreamEndCapture(stream, graph);
            cuGraphDestroy(graph);
            throw e;
        } finally {
            capturing = false;
            debugSync = sync;
        }
        Cu.check(cuStreamEndCapture(stream, graph), "cuStreamEndCapture");
        CUgraphExec exec = new CUgraphExec();
        Cu.check(cuGraphInstantiate(exec, graph, 0), "cuGraphInstantiate");
        if (generation != recordedAt) {
            // A step buffer moved while recording: the graph would read the old one.
            CudaGraph stale = new CudaGraph(this, graph, exec, recordedAt);
            stale.close();
            throw new IllegalStateException("a step buffer moved during graph capture");
        }
        return new CudaGraph(this, graph, exec, recordedAt);
    }

    /** Fills {@code count} floats at {@code offset} bytes of {@code buffer} with a bit pattern (0: zeros). */
    void fill32(DeviceBuffer buffer, long offset, long count, int bits) {
        if (count > 0) {
            Cu.check(cuMemsetD32Async(buffer.pointer(offset), bits, count, stream), "cuMemsetD32Async");
        }
    }

    /** Waits for all work issued so far; staging arenas may then be reused. */
    void synchronize() {
        synchronizeStream();
        uploads.reset();
    }

    private void synchronizeStream() {
        Cu.check(cuStreamSynchronize(stream), "cuStreamSynchronize");
    }

    boolean debugSync() {
        return debugSync;
    }

    /** Turns the per-launch synchronization on or off (timings switch it off). */
    void debugSync(boolean on) {
        debugSync = on;
    }

    /** Whether {@link #close} ran: what was made in this context (graphs, buffers) is gone with it. */
    boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        enter();
        synchronizeStream();
        closed = true;
        transfers.close();
        uploads.close();
        memory.close();
        cuModuleUnload(module);
        cuStreamDestroy(stream);
        cuDevicePrimaryCtxRelease(device);
    }
}
