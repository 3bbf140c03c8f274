package io.jemma.bench;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class ResultTableTest {

    @Test
    void layoutIsSglangs() {
        var summary = new Stats.Summary(10, 9, 1, 12, 13, 14, 15);
        var m = new BenchMetrics(64, 1, 8192, 4096, -1, 12.345, 5.18, 663.5, 331.8, 995.3, 15.2, 400, 16, summary,
                summary, summary, summary);
        String table = ResultTable.format(new ResultTable.Header("openai-chat", Double.POSITIVE_INFINITY, 16), m);
        List<String> lines = table.lines().toList();
        assertEquals("", lines.get(0));
        assertEquals("============ Serving Benchmark Result ============", lines.get(1));
        assertEquals("Backend:                                 openai-chat", lines.get(2));
        assertEquals("Traffic request rate:                    inf       ", lines.get(3));
        assertEquals("Max request concurrency:                 16        ", lines.get(4));
        assertEquals("Successful requests:                     64        ", lines.get(5));
        assertEquals("Benchmark duration (s):                  12.35     ", lines.get(7));
        assertEquals("Total generated tokens (retokenized):    n/a       ", lines.get(10));
        assertEquals(true, lines.contains("----------------End-to-End Latency----------------"));
        assertEquals(true, lines.contains("---------------Time to First Token----------------"));
        assertEquals(true, lines.contains("-----Time per Output Token (excl. 1st token)------"));
        assertEquals(true, lines.contains("---------------Inter-Token Latency----------------"));
        assertEquals(true, lines.contains("P90 E2E Latency (ms):                    12.00     "));
        assertEquals("==================================================", lines.getLast());
        for (String line : lines) {
            assertEquals(true, line.isEmpty() || line.length() >= 50, "'" + line + "'");
        }
    }

    @Test
    void ratesPrintAsPythonFloats() {
        assertEquals("inf", ResultTable.pythonFloat(Double.POSITIVE_INFINITY));
        assertEquals("4.0", ResultTable.pythonFloat(4));
        assertEquals("0.5", ResultTable.pythonFloat(0.5));
    }
}
