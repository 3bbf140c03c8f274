package io.jemma.tokenizer;

/**
 * Remembers the BPE result of recently seen text segments (mostly single words).
 *
 * <p>Four-way set-associative and shared by all threads without locks: a slot holds an immutable
 * record, so a racing reader sees either a whole old entry, a whole new entry or nothing, and a
 * lost write only costs a recomputation. Bounded at {@value #SETS} x 4 entries (about 12 MB at
 * most), enough for the working vocabulary of a server.
 */
final class SegmentCache {

    /** Segments longer than this are rare and would only evict useful entries. */
    static final int MAX_SEGMENT_CHARS = 48;

    private static final int SETS = 1 << 15;
    private static final int WAYS = 4;

    private record Entry(char[] text, int hash, int[] ids) {}

    private final Entry[] slots = new Entry[SETS * WAYS];

    /** Picks the way to evict; increments may race, which only changes which entry goes. */
    private int clock;

    static int hash(char[] text, int from, int to) {
        int h = 0;
        for (int i = from; i < to; i++) {
            h = 31 * h + text[i];
        }
        h ^= h >>> 16;
        h *= 0x85EB_CA6B;
        h ^= h >>> 13;
        return h;
    }

    int[] get(char[] text, int from, int to, int hash) {
        int base = (hash & (SETS - 1)) * WAYS;
        for (int way = 0; way < WAYS; way++) {
            Entry entry = slots[base + way];
            if (entry != null && entry.hash == hash && sameText(entry.text, text, from, to)) {
                return entry.ids;
            }
        }
        return null;
    }

    void put(char[] segment, int hash, int[] ids) {
        int base = (hash & (SETS - 1)) * WAYS;
        for (int way = 0; way < WAYS; way++) {
            if (slots[base + way] == null) {
                slots[base + way] = new Entry(segment, hash, ids);
                return;
            }
        }
        slots[base + (clock++ & (WAYS - 1))] = new Entry(segment, hash, ids);
    }

    private static boolean sameText(char[] cached, char[] text, int from, int to) {
        if (cached.length != to - from) {
            return false;
        }
        for (int i = 0; i < cached.length; i++) {
            if (cached[i] != text[from + i]) {
                return false;
            }
        }
        return true;
    }
}
