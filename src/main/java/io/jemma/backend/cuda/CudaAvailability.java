package io.jemma.backend.cuda;

/**
 * Whether the CUDA backend can run here, and if not, why, in words an operator can act on.
 *
 * @param available true when a backend can be created
 * @param reason    why not (empty when available)
 * @param detail    what was found: the device and library versions when available
 */
public record CudaAvailability(boolean available, String reason, String detail) {

    static CudaAvailability yes(String detail) {
        return new CudaAvailability(true, "", detail);
    }

    static CudaAvailability no(String reason) {
        return new CudaAvailability(false, reason, "");
    }

    @Override
    public String toString() {
        return available ? "CUDA available: " + detail : "CUDA unavailable: " + reason;
    }
}
