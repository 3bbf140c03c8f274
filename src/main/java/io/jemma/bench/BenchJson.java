package io.jemma.bench;

import com.fasterxml.jackson.databind.ObjectMapper;

/** The one JSON mapper of the benchmark (thread-safe once configured, and it is never reconfigured). */
final class BenchJson {

    static final ObjectMapper MAPPER = new ObjectMapper();

    private BenchJson() {
    }
}
