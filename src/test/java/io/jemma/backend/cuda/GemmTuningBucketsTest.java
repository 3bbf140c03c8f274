package io.jemma.backend.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Prefill GEMMs share a tuned cuBLASLt algorithm per token bucket (CublasLt.GemmKey#bucket), so a prompt of a new
 * length does not pay for a tuning pass once a prompt of its bucket did.
 */
class GemmTuningBucketsTest {
    private static CublasLt.GemmKey tokens(long n) {
        return new CublasLt.GemmKey(16384, n, 5376, 5376, 5376, 16384, 256, 256, 256);
    }

    @Test
    void tokensRoundUpToAPowerOfTwoAndNothingElseChanges() {
        assertEquals(tokens(512), tokens(512).bucket());
        assertEquals(tokens(1024), tokens(513).bucket());
        assertEquals(tokens(8192), tokens(5000).bucket());
        assertEquals(tokens(8192), tokens(8192).bucket());
        assertEquals(tokens(16384), tokens(8193).bucket());
        CublasLt.GemmKey bf16 = new CublasLt.GemmKey(21504, 3000, 5376, 5376, 5376, 21504, 256, 16, 256,
                CublasLt.CUDA_R_16BF);
        assertEquals(new CublasLt.GemmKey(21504, 4096, 5376, 5376, 5376, 21504, 256, 16, 256, CublasLt.CUDA_R_16BF),
                bf16.bucket(), "the output type and the alignments are kept");
    }
}
