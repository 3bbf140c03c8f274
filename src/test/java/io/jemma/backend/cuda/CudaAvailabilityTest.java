package io.jemma.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * Runs everywhere (CI has no GPU): the probe answers without throwing, and where CUDA is missing it says
 * why in one line, and creating the backend fails with that reason.
 */
class CudaAvailabilityTest {

    @Test
    void probeAnswersWithAReason() {
        CudaAvailability a = CudaBackend.available();
        System.out.println(a);
        assertEquals(a, CudaBackend.available(), "probed once per JVM");
        if (a.available()) {
            assertFalse(a.detail().isBlank());
            return;
        }
        assertFalse(a.reason().isBlank());
        assertFalse(a.reason().contains("\n"), "one line, not JCuda's nested stack traces: " + a.reason());
        IllegalStateException e = assertThrows(IllegalStateException.class, CudaBackend::new);
        assertTrue(e.getMessage().contains(a.reason()), e.getMessage());
    }

    @Test
    void driverLoadErrorsAreSummarized() {
        String jcuda = "Error while loading native library \"JCudaDriver-12.6.0-linux-x86_64\"\n"
                + "Stack trace from the attempt to load the library as a resource:\n"
                + "java.lang.UnsatisfiedLinkError: /tmp/libJCudaDriver-12.6.0-linux-x86_64.so: libcuda.so.1: "
                + "cannot open shared object file: No such file or directory\n\tat ...";
        assertEquals("libcuda.so.1 not found (no NVIDIA driver installed)",
                CudaProbe.driverLoadError(new UnsatisfiedLinkError(jcuda)));
        assertEquals("UnsatisfiedLinkError: something else",
                CudaProbe.driverLoadError(new UnsatisfiedLinkError("something else\nmore")));
    }
}
