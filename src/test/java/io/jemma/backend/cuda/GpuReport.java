package io.jemma.backend.cuda;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;

/**
 * The GPU checks' results, one tab-separated line each, appended to the file named by
 * {@code -Djemma.gpu.report} (tools/gpu/check.sh prints it as a table at the end), else to stdout.
 * Columns: kind (check | time), test, case, value, bound or unit, verdict.
 */
final class GpuReport {
    private GpuReport() {
    }

    /** A correctness check: relative error against its bound. */
    static void check(String test, String what, double relError, double bound, boolean pass) {
        line("check", test, what, String.format(Locale.ROOT, "%.3e", relError),
                String.format(Locale.ROOT, "%.0e", bound), pass ? "PASS" : "FAIL");
    }

    /** A timing: median microseconds, and what it comes to (GB/s or TFLOP/s). */
    static void time(String test, String what, double micros, String rate) {
        line("time", test, what, String.format(Locale.ROOT, "%.1f us", micros), rate, "-");
    }

    private static synchronized void line(String... fields) {
        String text = String.join("\t", fields) + "\n";
        String file = System.getProperty("jemma.gpu.report");
        if (file == null || file.isBlank()) {
            System.out.print(text);
            return;
        }
        try {
            Files.writeString(Path.of(file), text, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
