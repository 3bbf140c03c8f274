package io.jemma.tokenizer;

/**
 * Remembers the BPE result of recently seen text segments (mostly single words).
 *
 * <p>Direct-mapped and shared by all threads without locks: a slot holds an immutable record,
 * so a racing reader sees either a whole old entry, a whole new entry or nothing, and a lost
 * write only costs a recomputation.
 */
final class SegmentCache {

  /** Segments longer than this are rare and would only evict useful entries. */
  static final int MAX_SEGMENT_CHARS = 48;

  private record Entry(String text, int hash, int[] ids) {}

  private final Entry[] slots;
  private final int mask;

  SegmentCache(int slotCount) {
    int capacity = Integer.highestOneBit(Math.max(16, slotCount));
    slots = new Entry[capacity];
    mask = capacity - 1;
  }

  static int hash(String text, int from, int to) {
    int h = 0;
    for (int i = from; i < to; i++) {
      h = 31 * h + text.charAt(i);
    }
    h ^= h >>> 16;
    h *= 0x85EB_CA6B;
    h ^= h >>> 13;
    return h;
  }

  int[] get(String text, int from, int to, int hash) {
    Entry entry = slots[hash & mask];
    if (entry != null
        && entry.hash == hash
        && entry.text.length() == to - from
        && entry.text.regionMatches(0, text, from, to - from)) {
      return entry.ids;
    }
    return null;
  }

  void put(String segment, int hash, int[] ids) {
    slots[hash & mask] = new Entry(segment, hash, ids);
  }
}
