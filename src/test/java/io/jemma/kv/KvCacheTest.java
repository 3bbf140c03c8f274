package io.jemma.kv;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KvCacheTest {

    @Test
    void slotsOfDifferentSequencesNeverCollide() {
        KvCache kv = new KvCache(4, 64, 64, 0);
        Set<Integer> slots = new HashSet<>();
        for (int seq = 0; seq < 3; seq++) {
            assertTrue(kv.reserve(seq, 30, 30));
            kv.extend(seq, 30);
            for (int p = 0; p < 30; p++) {
                assertTrue(slots.add(kv.slot(seq, false, p)), "slot reused: seq " + seq + " pos " + p);
            }
        }
        assertEquals(3 * 8, kv.fullPool().usedPages());
    }

    @Test
    void slidingLayersKeepAboutOneWindow() {
        int window = 8;
        KvCache kv = new KvCache(4, 100, 100, window);
        assertTrue(kv.reserve(1, 400, 4));
        for (int length = 4; length <= 400; length += 4) {
            kv.extend(1, length);
            kv.written(1, length);
            // the next query sees positions length - window + 1 .. length: they must still be mapped
            for (int p = Math.max(0, length - window + 1); p < length; p++) {
                kv.slot(1, true, p);
            }
            assertTrue(kv.slidingPool().usedPages() <= window / 4 + 2, "sliding pages held: "
                    + kv.slidingPool().usedPages());
        }
        assertThrows(IllegalStateException.class, () -> kv.slot(1, true, 0), "an old position must be gone");
        assertEquals(100, kv.fullPool().usedPages(), "full layers keep everything");
    }

    @Test
    void speculativeRoundsKeepWhatRollbackAndTheAssistantNeedAndGiveTheRestBack() {
        // Rounds write 5 draft positions, of which 0..4 are rolled back; the kept ones and the assistant's two
        // extra positions behind the window (retained: 5 + 1) must stay mapped, and pages past the kept length go.
        int window = 8;
        int drafts = 5;
        KvCache kv = new KvCache(4, 100, 100, window);
        kv.retainBehindWindow(drafts + 1);
        assertTrue(kv.reserve(1, 300, drafts));
        java.util.Random random = new java.util.Random(3);
        int length = 10;
        kv.extend(1, length);
        kv.written(1, length);
        while (length + drafts < 300) {
            kv.extend(1, length + drafts);
            kv.written(1, length + drafts);
            length += 1 + random.nextInt(drafts);
            kv.truncate(1, length);
            for (int p = Math.max(0, length - window - 1); p < length; p++) {
                kv.slot(1, true, p);
                kv.slot(1, false, p);
            }
            assertEquals(-1, kv.page(1, false, (length + 3) / 4), "no full page past the kept length");
            assertTrue(kv.slidingPool().usedPages() <= kv.slidingPagesFor(300, drafts), "within the reservation");
        }
        assertThrows(IllegalStateException.class, () -> kv.retainBehindWindow(2), "only before sequences start");
        kv.release(1);
        assertEquals(0, kv.usedPages());
    }

    @Test
    void admissionReservesTheWorstCaseAndReleaseGivesEverythingBack() {
        KvCache kv = new KvCache(16, 10, 10, 32);
        assertTrue(kv.reserve(1, 100, 50)); // 7 full pages, min(7, ceil(81/16)+1 = 7)
        assertFalse(kv.canReserve(100, 50), "a second one does not fit");
        assertFalse(kv.reserve(2, 100, 50));
        assertTrue(kv.couldEverFit(100, 50));
        assertFalse(kv.couldEverFit(1000, 50));
        kv.extend(1, 60);
        kv.release(1);
        assertEquals(0, kv.usedPages());
        assertTrue(kv.reserve(2, 100, 50));
    }

    @Test
    void growingPastTheReservationIsABug() {
        KvCache kv = new KvCache(4, 10, 10, 0);
        kv.reserve(1, 8, 8);
        assertThrows(IllegalStateException.class, () -> kv.extend(1, 9));
    }

    @Test
    void truncateReturnsPagesPastTheNewLength() {
        KvCache kv = new KvCache(4, 10, 10, 0);
        kv.reserve(1, 40, 40);
        kv.extend(1, 40);
        kv.truncate(1, 13);
        assertEquals(4, kv.fullPool().usedPages());
        kv.slot(1, false, 12);
        assertThrows(IllegalStateException.class, () -> kv.slot(1, false, 16));
    }
}
