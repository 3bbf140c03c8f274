package io.jemma.backend.cuda;

/**
 * What the backend knows about its GPU.
 *
 * @param ordinal        device index
 * @param name           the driver's name for it ("NVIDIA H200")
 * @param major          compute capability major (9 on Hopper)
 * @param minor          compute capability minor
 * @param multiprocessors SM count
 * @param totalBytes     device memory
 * @param driverVersion  CUDA version the driver supports, as 1000 * major + 10 * minor
 */
public record DeviceInfo(int ordinal, String name, int major, int minor, int multiprocessors, long totalBytes,
                         int driverVersion) {

    /**
     * Whether the fatbin's sm_90a machine code runs here (compute capability exactly 9.0): the wgmma / bulk-copy
     * kernels (attention_prefill_sm90.cu) and what feeds them.
     */
    public boolean sm90a() {
        return major == 9 && minor == 0;
    }

    @Override
    public String toString() {
        return String.format("%s (device %d, sm_%d%d, %d SMs, %.1f GiB, driver CUDA %d.%d)", name, ordinal, major,
                minor, multiprocessors, totalBytes / (double) (1L << 30), driverVersion / 1000,
                driverVersion % 1000 / 10);
    }
}
