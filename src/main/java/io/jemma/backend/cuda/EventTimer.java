package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;

import java.util.Arrays;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;

/**
 * Times device work with CUDA events on the backend's stream: warm-up runs first (module load, cuBLASLt
 * plan creation), then {@code reps} runs each between its own pair of events; the median of the per-run
 * times is reported. Host launch overhead counts only where it leaves the GPU idle between runs.
 */
public final class EventTimer {
    private final CudaBackend backend;

    public EventTimer(CudaBackend backend) {
        this.backend = backend;
    }

    /**
     * Median milliseconds of one {@code work.run()}, with the context's debug sync (a host round trip after every
     * launch, {@code -Djemma.cuda.debug-sync}) off while it runs: it would time the host, not the kernels.
     */
    public double medianMillis(Runnable work, int warmup, int reps) {
        CudaContext context = backend.context();
        boolean debugSync = context.debugSync();
        context.debugSync(false);
        try {
            return timed(context, work, warmup, reps);
        } finally {
            context.debugSync(debugSync);
        }
    }

    private static double timed(CudaContext context, Runnable work, int warmup, int reps) {
        context.enter();
        for (int i = 0; i < warmup; i++) {
            work.run();
        }
        CUevent[] events = new CUevent[reps + 1];
        try {
            for (int i = 0; i <= reps; i++) {
                events[i] = new CUevent();
                Cu.check(cuEventCreate(events[i], CUevent_flags.CU_EVENT_DEFAULT), "cuEventCreate");
            }
            Cu.check(cuEventRecord(events[0], context.stream()), "cuEventRecord");
            for (int i = 1; i <= reps; i++) {
                work.run();
                Cu.check(cuEventRecord(events[i], context.stream()), "cuEventRecord");
            }
            Cu.check(cuEventSynchronize(events[reps]), "cuEventSynchronize");
            double[] ms = new double[reps];
            float[] elapsed = new float[1];
            for (int i = 0; i < reps; i++) {
                Cu.check(cuEventElapsedTime(elapsed, events[i], events[i + 1]), "cuEventElapsedTime");
                ms[i] = elapsed[0];
            }
            context.synchronize();
            Arrays.sort(ms);
            return ms[reps / 2];
        } finally {
            for (CUevent e : events) {
                if (e != null) {
                    cuEventDestroy(e);
                }
            }
        }
    }
}
