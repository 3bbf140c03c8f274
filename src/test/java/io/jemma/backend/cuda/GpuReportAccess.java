package io.jemma.backend.cuda;

/** {@link GpuReport} for GPU tests outside this package (the engine's). */
public final class GpuReportAccess {
    private GpuReportAccess() {
    }

    public static void check(String test, String what, double value, double bound, boolean pass) {
        GpuReport.check(test, what, value, bound, pass);
    }

    public static void time(String test, String what, double micros, String rate) {
        GpuReport.time(test, what, micros, rate);
    }
}
