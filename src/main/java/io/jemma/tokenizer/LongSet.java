package io.jemma.tokenizer;

import java.util.Arrays;

/** An open-addressing set of non-negative longs, for the (last character, first character) pairs that merges join. */
final class LongSet {

    private static final long EMPTY = -1L;

    private long[] slots = new long[64];
    private int size;

    void add(long value) {
        if ((size + 1) * 2 > slots.length) {
            long[] old = slots;
            slots = new long[old.length * 2];
            Arrays.fill(slots, EMPTY);
            size = 0;
            for (long v : old) {
                if (v != EMPTY) {
                    insert(v);
                }
            }
        }
        insert(value);
    }

    boolean contains(long value) {
        int mask = slots.length - 1;
        for (int i = slot(value, mask); ; i = (i + 1) & mask) {
            if (slots[i] == value) {
                return true;
            }
            if (slots[i] == EMPTY) {
                return false;
            }
        }
    }

    LongSet() {
        Arrays.fill(slots, EMPTY);
    }

    private void insert(long value) {
        int mask = slots.length - 1;
        int i = slot(value, mask);
        while (slots[i] != EMPTY) {
            if (slots[i] == value) {
                return;
            }
            i = (i + 1) & mask;
        }
        slots[i] = value;
        size++;
    }

    private static int slot(long value, int mask) {
        return (int) ((value * 0x9E37_79B9_7F4A_7C15L) >>> 40) & mask;
    }
}
