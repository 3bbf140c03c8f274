package io.jemma.tokenizer;

import java.util.Arrays;

/**
 * The BPE merge rules: (left id, right id) -> rank, and rank -> id of the merged piece.
 *
 * <p>An open-addressing table with each key stored next to its rank, so a lookup touches one
 * cache line: the merge loop looks up every adjacent pair, and with half a million rules the
 * table does not fit in the CPU caches.
 */
final class MergeTable {

    private static final long EMPTY = -1L;

    /** Slot i: key at 2i, rank at 2i + 1. */
    private final long[] slots;

    private final int shift;
    private final int mask;

    /** Indexed by rank: the id the pair merges into. Ranks of overridden duplicate merges are never looked up. */
    private final int[] mergedIdByRank;

    MergeTable(int expectedMerges) {
        int capacity = Integer.highestOneBit(Math.max(16, expectedMerges * 2 - 1)) << 1;
        slots = new long[capacity * 2];
        Arrays.fill(slots, EMPTY);
        mask = capacity - 1;
        shift = 64 - Integer.numberOfTrailingZeros(capacity);
        mergedIdByRank = new int[Math.max(expectedMerges, 1)];
    }

    /** Adds the merge with the given rank; a later merge of the same pair replaces the earlier one, as in Hugging Face. */
    void put(int left, int right, int rank, int mergedId) {
        long key = pack(left, right);
        int slot = slot(key);
        while (slots[2 * slot] != EMPTY && slots[2 * slot] != key) {
            slot = (slot + 1) & mask;
        }
        slots[2 * slot] = key;
        slots[2 * slot + 1] = rank;
        mergedIdByRank[rank] = mergedId;
    }

    /** The rank of merging {@code left} and {@code right}, or -1 when no rule merges them. */
    int rank(int left, int right) {
        long key = pack(left, right);
        int slot = slot(key);
        while (true) {
            long k = slots[2 * slot];
            if (k == key) {
                return (int) slots[2 * slot + 1];
            }
            if (k == EMPTY) {
                return -1;
            }
            slot = (slot + 1) & mask;
        }
    }

    int mergedId(int rank) {
        return mergedIdByRank[rank];
    }

    /** Calls {@code action} for every distinct merge rule that survived duplicates. */
    void forEach(MergeConsumer action) {
        for (int slot = 0; slot <= mask; slot++) {
            long key = slots[2 * slot];
            if (key != EMPTY) {
                action.accept((int) (key >>> 32), (int) key, (int) slots[2 * slot + 1]);
            }
        }
    }

    interface MergeConsumer {
        void accept(int left, int right, int rank);
    }

    private static long pack(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFF_FFFFL);
    }

    private int slot(long key) {
        return (int) ((key * 0x9E37_79B9_7F4A_7C15L) >>> shift);
    }
}
