package io.jemma.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The trtllm_mha launch arithmetic, without a GPU: query tiles, shared memory, split counts. */
class TrtllmMhaPlanningTest {
    private static final int H200_SMS = 132;

    @Test
    void queryTilesAreTheCompiledVariants() {
        assertEquals(1, TrtllmMhaAttention.queryTiles(1));
        assertEquals(1, TrtllmMhaAttention.queryTiles(8));     // decode at group 8
        assertEquals(2, TrtllmMhaAttention.queryTiles(9));
        assertEquals(2, TrtllmMhaAttention.queryTiles(16));
        assertEquals(4, TrtllmMhaAttention.queryTiles(17));    // no 3-tile variant
        assertEquals(4, TrtllmMhaAttention.queryTiles(32));    // 3-1-4 at group 8
        assertThrows(IllegalArgumentException.class, () -> TrtllmMhaAttention.queryTiles(33));
    }

    @Test
    void sharedMemoryFitsTheBlocksPerSm() {
        int perSm = 228 * 1024;                             // H100/H200: 228 KB per SM, 227 KB per block
        for (int hd : new int[] {64, 128, 256, 512}) {
            for (int nq : new int[] {1, 2, 4}) {
                for (int tpr : new int[] {1, 2, 4}) {
                    if (tpr > 1 && !TrtllmMhaAttention.wideCompiled(hd, nq)) {
                        continue;
                    }
                    int bytes = TrtllmMhaAttention.sharedBytes(hd, nq, tpr);
                    int blocks = TrtllmMhaAttention.blocksPerSm(hd, nq, tpr);
                    String what = hd + "/" + nq + "/" + tpr;
                    assertTrue(bytes <= 227 * 1024, what + ": " + bytes);
                    assertTrue(blocks * (bytes + 1024) <= perSm, what + ": " + blocks + " x " + bytes);
                    assertTrue(TrtllmMhaAttention.stages(hd, nq, tpr) >= tpr, what + ": a round fits the stages");
                }
                if (TrtllmMhaAttention.rows32Compiled(hd, nq)) {
                    for (TrtllmMhaAttention.Rows32 v : TrtllmMhaAttention.Rows32.values()) {
                        int bytes = TrtllmMhaAttention.sharedBytes(hd, nq, v.tpr, v.pipe, v.ring);
                        String what = hd + "/" + nq + " " + v;
                        assertTrue(bytes <= 227 * 1024, what + ": " + bytes);
                        assertEquals(1, TrtllmMhaAttention.blocksPerSm(hd, nq, 1, v), what);
                        assertTrue(TrtllmMhaAttention.stages(hd, nq, v.tpr, v.pipe) >= (v.pipe > 0 ? 3 : 2) * v.tpr, what);
                    }
                }
            }
        }
        // The variants of one tile per round keep their residency: one block per SM only for 32 rows at 512.
        for (int hd : new int[] {64, 128, 256, 512}) {
            for (int nq : new int[] {1, 2, 4}) {
                assertEquals(hd == 512 && nq == 4 ? 1 : 2, TrtllmMhaAttention.blocksPerSm(hd, nq, 1), hd + "/" + nq);
            }
        }
        // Wide rounds: hd 256 two blocks per SM at 2 and 4 tiles; hd 512 two at 2 tiles (3 stages), one at 4 (6 stages).
        assertEquals(2, TrtllmMhaAttention.blocksPerSm(256, 1, 4));
        assertEquals(2, TrtllmMhaAttention.blocksPerSm(512, 1, 2));
        assertEquals(1, TrtllmMhaAttention.blocksPerSm(512, 1, 4));
        assertEquals(6 * 2 * 16 * 1040 + 8 * 8 * 68 * 4 + 8 * 72 * 2 + 3 * 8 * 4, TrtllmMhaAttention.sharedBytes(512, 1, 4));
        // Shape<512, 1>: 3 stages of 2 x 16 rows x 1040 bytes, 8 warps' partials of 8 rows x 20 floats, P, state
        assertEquals(3 * 2 * 16 * 1040 + 8 * 8 * 20 * 4 + 8 * 24 * 2 + 3 * 8 * 4,
                TrtllmMhaAttention.sharedBytes(512, 1, 1));
        // Head dims 64/128: 4 stages. A launch of 49120 bytes (hd 128, 5 stages), just under the 48 KB that
        // needs no opt-in (CudaContext opts in above it), failed with CUDA_ERROR_INVALID_VALUE on the H200:
        // no variant comes near that edge.
        assertEquals(4 * 2 * 16 * 144 + 4 * 8 * 20 * 4 + 8 * 24 * 2 + 3 * 8 * 4,
                TrtllmMhaAttention.sharedBytes(64, 1, 1));
        for (int hd : new int[] {64, 128, 256, 512}) {
            for (int nq : new int[] {1, 2, 4}) {
                int bytes = TrtllmMhaAttention.sharedBytes(hd, nq, 1);
                assertTrue(bytes <= 46 * 1024 || bytes > 48 * 1024, hd + "/" + nq + ": " + bytes);
            }
        }
    }

    @Test
    void warpsPerHeadDim() {
        assertEquals(4, TrtllmMhaAttention.warps(64, 1));       // one warp per 16 dims
        assertEquals(8, TrtllmMhaAttention.warps(128, 4));
        assertEquals(8, TrtllmMhaAttention.warps(256, 4));
        assertEquals(8, TrtllmMhaAttention.warps(512, 2));
        assertEquals(16, TrtllmMhaAttention.warps(512, 4));     // 32 rows at head dim 512
    }

    @Test
    void splitsFillTheWaves() {
        int twoPerSm = 2 * H200_SMS;
        // Batch 32 at head dim 512 (4 KV heads): 128 pairs; 2 splits fill one wave of 264 (3 would leave 1.45).
        assertEquals(2, TrtllmMhaAttention.splits(128, 512, twoPerSm));
        // Head dim 256 (16 KV heads): 512 pairs already fill 2 waves.
        assertEquals(1, TrtllmMhaAttention.splits(512, 512, twoPerSm));
        // Batch 1 at a long context: enough splits for a wave.
        assertEquals(60, TrtllmMhaAttention.splits(4, 2048, twoPerSm));
        // Short contexts: at least 4 tiles per split, so few splits even with few pairs.
        assertEquals(2, TrtllmMhaAttention.splits(4, 8, twoPerSm));
        assertEquals(1, TrtllmMhaAttention.splits(4, 7, twoPerSm));
        // Batch 1 at 2k (31B's profile step): head dim 512 (4 KV heads, 128 tiles: at most 32 splits) and
        // the sliding head dim 256 layers (16 KV heads, a window of 1024: 65 tiles).
        assertEquals(32, TrtllmMhaAttention.splits(4, 128, twoPerSm));
        assertEquals(15, TrtllmMhaAttention.splits(16, 65, twoPerSm));
        assertEquals(1, TrtllmMhaAttention.splits(0, 100, twoPerSm));
        // Two tiles per round: 16 splits of 4 tiles (one wave of 256 blocks) rather than 15 of 5; with 65
        // tiles no count in the same wave gives whole rounds, so the plain 15.
        assertEquals(16, TrtllmMhaAttention.splits(16, 64, twoPerSm, 2));
        assertEquals(15, TrtllmMhaAttention.splits(16, 65, twoPerSm, 2));
        assertEquals(2, TrtllmMhaAttention.splits(128, 512, twoPerSm, 2));
    }

    @Test
    void twoLevelMergeOnlyWhereTheSingleMergeIsLarge() {
        // Batch 1 at 2k, head dim 256 window 1024: 2 rows x 15 splits of 1 KB partials = 30 KB: 8 splits, one level.
        assertEquals(8, TrtllmMhaAttention.withMerge(15, 2, 256));
        // Head dim 512: 8 rows x 32 splits x 2 KB = 512 KB: two levels.
        assertEquals(32, TrtllmMhaAttention.withMerge(32, 8, 512));
        // Up to 8 splits nothing changes; verify of 4 tokens at head dim 256 (8 rows, 15 splits: 120 KB) keeps 15.
        assertEquals(7, TrtllmMhaAttention.withMerge(7, 2, 256));
        assertEquals(15, TrtllmMhaAttention.withMerge(15, 8, 256));
    }
}
