package io.jemma.backend.cuda;

import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuInit;

import java.nio.file.Path;
import jcuda.driver.CUdevice;
import jcuda.driver.CUresult;

/**
 * Finds out, without creating a context, whether the CUDA backend can run: the kernels were built, the
 * driver loads (JCuda's native library needs libcuda.so.1 and nothing else), a device of compute
 * capability 8.0+ (bf16 tensor cores) exists, and cuBLASLt 13 can be found.
 */
final class CudaProbe {
    private CudaProbe() {
    }

    static CudaAvailability probe(int ordinal) {
        if (CudaProbe.class.getResource(CudaContext.FATBIN_RESOURCE) == null) {
            return CudaAvailability.no("the CUDA kernels were not built: no " + CudaContext.FATBIN_RESOURCE
                    + " on the classpath (nvcc was not found at build time; install the CUDA toolkit or set NVCC and rebuild)");
        }
        int init;
        try {
            init = cuInit(0);
        } catch (Throwable t) {
            return CudaAvailability.no("the CUDA driver cannot be loaded: " + driverLoadError(t));
        }
        if (init != CUresult.CUDA_SUCCESS) {
            return CudaAvailability.no("cuInit failed: " + CUresult.stringFor(init)
                    + (init == CUresult.CUDA_ERROR_NO_DEVICE ? " (no NVIDIA GPU visible)" : ""));
        }
        int[] count = new int[1];
        int r = cuDeviceGetCount(count);
        if (r != CUresult.CUDA_SUCCESS || count[0] == 0) {
            return CudaAvailability.no("no CUDA device (" + CUresult.stringFor(r) + ", count " + count[0] + ")");
        }
        if (ordinal < 0 || ordinal >= count[0]) {
            return CudaAvailability.no("device " + ordinal + " does not exist (" + count[0] + " visible)");
        }
        DeviceInfo info;
        try {
            CUdevice device = new CUdevice();
            Cu.check(cuDeviceGet(device, ordinal), "cuDeviceGet");
            info = CudaContext.describe(ordinal, device);
        } catch (CudaException e) {
            return CudaAvailability.no(e.getMessage());
        }
        if (info.major() < 8) {
            return CudaAvailability.no(info.name() + " is sm_" + info.major() + info.minor()
                    + "; the kernels need compute capability 8.0 or newer (bf16)");
        }
        Path lt = CublasLtLibrary.find(System.getenv());
        if (lt == null && !loadableByName()) {
            return CudaAvailability.no(CublasLtLibrary.SONAME + " not found in "
                    + CublasLtLibrary.searchPath(System.getenv()) + " nor by the dynamic loader (install cuBLAS 13 or set CUDA_HOME)");
        }
        return CudaAvailability.yes(info + ", " + (lt != null ? lt : CublasLtLibrary.SONAME));
    }

    private static boolean loadableByName() {
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            java.lang.foreign.SymbolLookup.libraryLookup(CublasLtLibrary.SONAME, arena);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** JCuda's load error is a page of nested stack traces; say what matters. */
    static String driverLoadError(Throwable t) {
        String all = String.valueOf(t.getMessage());
        if (all.contains("libcuda.so")) {
            return "libcuda.so.1 not found (no NVIDIA driver installed)";
        }
        if (t instanceof NoClassDefFoundError) {
            return "JCuda failed to initialize earlier in this JVM (" + all + ")";
        }
        String first = all.lines().findFirst().orElse(all);
        return t.getClass().getSimpleName() + ": " + first;
    }
}
