package io.jemma.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The host-side arithmetic of the CUDA backend, which needs no GPU to be right. */
class CudaPlanningTest {

    @Test
    void sizeClassesWasteAtMostAQuarter() {
        assertEquals(512, DeviceMemory.sizeClass(1));
        assertEquals(512, DeviceMemory.sizeClass(512));
        assertEquals(640, DeviceMemory.sizeClass(513));
        assertEquals(1024, DeviceMemory.sizeClass(1000));
        assertEquals(1024, DeviceMemory.sizeClass(1024));
        assertEquals(1280, DeviceMemory.sizeClass(1025));
        for (long bytes = 1; bytes < 1L << 40; bytes = bytes * 3 + 1) {
            long c = DeviceMemory.sizeClass(bytes);
            assertTrue(c >= bytes && (c <= 512 || c <= bytes * 1.25 + 1), bytes + " -> " + c);
            assertEquals(c, DeviceMemory.sizeClass(c), "a class maps to itself");
        }
    }

    @Test
    void gemmAlignmentIsTheWeakestOfAddressAndLeadingDimension() {
        assertEquals(256, Gemm.alignment(0x7f0000000000L, 5376 * 2));
        assertEquals(4, Gemm.alignment(0x7f0000000004L, 4096 * 4));
        assertEquals(2, Gemm.alignment(0x7f0000000000L, 33 * 2));
        assertEquals(16, Gemm.alignment(0x7f0000000010L, 8192 * 4));
        assertEquals(256, Gemm.alignment(0, 1 << 20));
    }

    @Test
    void cublasLtSearchPath() {
        List<Path> path = CublasLtLibrary.searchPath(Map.of("CUDA_HOME", "/opt/cuda", "LD_LIBRARY_PATH",
                "/x/lib::/usr/local/cuda/lib64"));
        assertEquals(List.of(Path.of("/opt/cuda/lib64"), Path.of("/usr/local/cuda/lib64"),
                Path.of("/usr/local/cuda-13.0/targets/x86_64-linux/lib"),
                Path.of("/usr/local/cuda/targets/x86_64-linux/lib"), Path.of("/x/lib")), path);
        assertEquals(Path.of("/usr/local/cuda/lib64"), CublasLtLibrary.searchPath(Map.of()).get(0));
    }
}
