package io.jemma.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import org.junit.jupiter.api.Test;

/** The batch-size buckets decode graphs are recorded for (sglang's: 1, 2, 4, 8, then every 8). */
class DecodeGraphsTest {
    @Test
    void bucketsCoverEveryBatchUpToTheMaximum() {
        assertArrayEquals(new int[] {1}, DecodeGraphs.buckets(1));
        assertArrayEquals(new int[] {1, 2, 4}, DecodeGraphs.buckets(3));
        assertArrayEquals(new int[] {1, 2, 4, 8}, DecodeGraphs.buckets(8));
        assertArrayEquals(new int[] {1, 2, 4, 8, 16, 24}, DecodeGraphs.buckets(20));
        assertArrayEquals(new int[] {1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64}, DecodeGraphs.buckets(64));
    }
}
