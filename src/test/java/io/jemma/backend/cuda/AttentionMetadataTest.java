package io.jemma.backend.cuda;

import static io.jemma.backend.cuda.AttentionMetadata.CHUNK_INTS;
import static io.jemma.backend.cuda.AttentionMetadata.C_END;
import static io.jemma.backend.cuda.AttentionMetadata.C_FIRST_ROW;
import static io.jemma.backend.cuda.AttentionMetadata.C_SEQUENCE;
import static io.jemma.backend.cuda.AttentionMetadata.C_START;
import static io.jemma.backend.cuda.AttentionMetadata.C_TABLE_ROW;
import static io.jemma.backend.cuda.AttentionMetadata.C_TOKENS;
import static io.jemma.backend.cuda.AttentionMetadata.C_TREE;
import static io.jemma.backend.cuda.AttentionMetadata.H_CHUNKS;
import static io.jemma.backend.cuda.AttentionMetadata.H_CHUNK_RECORDS;
import static io.jemma.backend.cuda.AttentionMetadata.H_FULL_TABLE;
import static io.jemma.backend.cuda.AttentionMetadata.H_MAX_CHUNK_TOKENS;
import static io.jemma.backend.cuda.AttentionMetadata.H_MAX_END;
import static io.jemma.backend.cuda.AttentionMetadata.H_PAGE_SIZE;
import static io.jemma.backend.cuda.AttentionMetadata.H_ROW_CHUNK;
import static io.jemma.backend.cuda.AttentionMetadata.H_ROW_POSITION;
import static io.jemma.backend.cuda.AttentionMetadata.H_SLIDING_TABLE;
import static io.jemma.backend.cuda.AttentionMetadata.H_STRIDE;
import static io.jemma.backend.cuda.AttentionMetadata.H_TOKENS;
import static io.jemma.backend.cuda.AttentionMetadata.H_TREE_CHUNKS;
import static io.jemma.backend.cuda.AttentionMetadata.H_TREE_MASKS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.jemma.attention.ForwardBatch;
import io.jemma.attention.SequenceChunk;
import io.jemma.attention.TreeMask;
import io.jemma.kv.KvCache;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The host side of the step metadata both GPU attention backends read: no GPU needed. */
class AttentionMetadataTest {

    private static int chunkField(int[] m, int chunk, int field) {
        return m[m[H_CHUNK_RECORDS] + chunk * CHUNK_INTS + field];
    }

    private static int table(int[] m, boolean sliding, int chunk, int logicalPage) {
        return m[m[sliding ? H_SLIDING_TABLE : H_FULL_TABLE] + chunk * m[H_STRIDE] + logicalPage];
    }

    private static long mask(int[] m, int row) {
        int at = m[H_TREE_MASKS] + 2 * row;
        return (m[at] & 0xffffffffL) | ((long) m[at + 1] << 32);
    }

    /** The engine's KvCache with a sliding window: sliding pages behind the window come back as -1. */
    @Test
    void blockTablesFromTheEnginesPagesWithReleasedSlidingPages() {
        int pageSize = 4;
        int window = 6;
        KvCache kv = new KvCache(pageSize, 64, 64, window);
        assertTrue(kv.reserve(7, 40, 16));
        assertTrue(kv.reserve(3, 40, 16));
        // Sequence 7: 21 positions written, then a decode token at 21. Sequence 3: a prefill of 5.
        kv.extend(7, 21);
        kv.written(7, 21);
        kv.extend(7, 22);
        kv.extend(3, 5);
        ForwardBatch batch = new ForwardBatch(List.of(new SequenceChunk(7, 21, 1, 0), new SequenceChunk(3, 0, 5, 1)), 6);
        int[] m = AttentionMetadata.image(batch, kv);

        assertEquals(2, m[H_CHUNKS]);
        assertEquals(6, m[H_TOKENS]);
        assertEquals(pageSize, m[H_PAGE_SIZE]);
        assertEquals(6, m[H_STRIDE], "ceil(22 / 4) logical pages");
        assertEquals(5, m[H_MAX_CHUNK_TOKENS]);
        assertEquals(22, m[H_MAX_END]);
        assertEquals(0, m[H_TREE_CHUNKS]);
        assertEquals(0, m[H_TREE_MASKS] % 2, "uint64 masks at an even word offset");

        assertEquals(0, chunkField(m, 0, C_FIRST_ROW));
        assertEquals(1, chunkField(m, 0, C_TOKENS));
        assertEquals(21, chunkField(m, 0, C_START));
        assertEquals(0, chunkField(m, 0, C_TABLE_ROW));
        assertEquals(7, chunkField(m, 0, C_SEQUENCE));
        assertEquals(22, chunkField(m, 0, C_END));
        assertEquals(0, chunkField(m, 0, C_TREE));
        assertEquals(1, chunkField(m, 1, C_FIRST_ROW));
        assertEquals(5, chunkField(m, 1, C_TOKENS));
        assertEquals(1, chunkField(m, 1, C_TABLE_ROW));
        assertEquals(3, chunkField(m, 1, C_SEQUENCE));

        int[] rowChunk = {0, 1, 1, 1, 1, 1};
        int[] position = {21, 0, 1, 2, 3, 4};
        for (int r = 0; r < 6; r++) {
            assertEquals(rowChunk[r], m[m[H_ROW_CHUNK] + r]);
            assertEquals(position[r], m[m[H_ROW_POSITION] + r]);
            assertEquals(0, mask(m, r));
        }
        for (int p = 0; p < 6; p++) {
            assertEquals(kv.page(7, false, p), table(m, false, 0, p));
            assertTrue(table(m, false, 0, p) >= 0);
            assertEquals(kv.slot(7, false, 4 * p), table(m, false, 0, p) * pageSize);
        }
        // Written up to 21 with a window of 6: positions < 16 are out of every future window, so sliding
        // pages 0..3 went back to the pool; 4 and 5 are held.
        for (int p = 0; p < 4; p++) {
            assertEquals(-1, table(m, true, 0, p), "released sliding page " + p);
        }
        for (int p = 4; p < 6; p++) {
            assertEquals(kv.slot(7, true, 4 * p), table(m, true, 0, p) * pageSize);
        }
        // Sequence 3 covers positions [0, 5): two pages; the rest of its row is padding.
        for (int p = 0; p < 6; p++) {
            int expected = p < 2 ? kv.page(3, false, p) : -1;
            assertEquals(expected, table(m, false, 1, p));
            assertEquals(p < 2 ? kv.page(3, true, p) : -1, table(m, true, 1, p));
        }
        AttentionMetadata.checkNewRowsHavePages(m, true, true);
    }

    @Test
    void treeMasksAndPositions() {
        // Root, two children of the root, a grandchild under the second child.
        TreeMask tree = new TreeMask(new int[] {0, 1, 1, 2}, new long[] {0b1, 0b11, 0b101, 0b1101});
        ForwardBatch batch = new ForwardBatch(List.of(new SequenceChunk(0, 9, 2, 0),
                new SequenceChunk(1, 70, 4, 2, tree)), 6);
        int[] m = AttentionMetadata.image(batch, io.jemma.attention.KvPages.ofSlots(16, (seq, sliding, pos) ->
                seq * 1024 + (sliding ? 512 : 0) + pos));
        assertEquals(1, m[H_TREE_CHUNKS]);
        assertEquals(1, chunkField(m, 1, C_TREE));
        assertEquals(0, chunkField(m, 0, C_TREE));
        int[] positions = {9, 10, 70, 71, 71, 72};
        long[] masks = {0, 0, 0b1, 0b11, 0b101, 0b1101};
        for (int r = 0; r < 6; r++) {
            assertEquals(positions[r], m[m[H_ROW_POSITION] + r], "row " + r);
            assertEquals(masks[r], mask(m, r), "row " + r);
        }
        assertEquals(5, m[H_STRIDE], "ceil(74 / 16)");
        assertEquals(64 + 32, table(m, true, 1, 0), "(1024 + 512) / 16");
        assertEquals(-1, table(m, false, 0, 1), "sequence 0 ends at 11: one page");
    }

    @Test
    void aFullWidthTreeMaskSurvivesTheSplitIntoWords() {
        TreeMask chain = TreeMask.chain(64);
        ForwardBatch batch = new ForwardBatch(List.of(new SequenceChunk(0, 0, 64, 0, chain)), 64);
        int[] m = AttentionMetadata.image(batch, io.jemma.attention.KvPages.ofSlots(1, (seq, sliding, pos) -> pos));
        assertEquals(-1L, mask(m, 63));
        assertEquals((1L << 32) - 1, mask(m, 31));
        assertEquals(64, m[H_STRIDE]);
        assertEquals(63, table(m, false, 0, 63));
    }

    @Test
    void aNewRowWithoutAPageIsAnEngineError() {
        KvCache kv = new KvCache(4, 8, 8, 0);
        assertTrue(kv.reserve(0, 16, 16));
        kv.extend(0, 4);
        ForwardBatch batch = new ForwardBatch(List.of(new SequenceChunk(0, 4, 1, 0)), 1);  // page 1 not taken
        int[] m = AttentionMetadata.image(batch, kv);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> AttentionMetadata.checkNewRowsHavePages(m, true, false));
        assertTrue(e.getMessage().contains("positions 4..7"), e.getMessage());
        AttentionMetadata.checkNewRowsHavePages(m, false, false);
    }
}
