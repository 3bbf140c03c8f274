package io.jemma.tokenizer;

/**
 * The BPE merge rules: (left id, right id) -> rank, and rank -> id of the merged piece.
 *
 * <p>An open-addressing table of packed long keys, because the merge loop looks up every adjacent
 * pair and a boxed HashMap would dominate encoding time with a 262k vocabulary.
 */
final class MergeTable {

  private static final long EMPTY = -1L;

  private final long[] keys;
  private final int[] ranks;
  private final int shift;
  private final int mask;
  /** Indexed by rank: the id the pair merges into. Ranks of overridden duplicate merges are never looked up. */
  private final int[] mergedIdByRank;
  private int count;

  MergeTable(int expectedMerges) {
    int capacity = Integer.highestOneBit(Math.max(16, expectedMerges * 2 - 1)) << 1;
    keys = new long[capacity];
    java.util.Arrays.fill(keys, EMPTY);
    ranks = new int[capacity];
    mask = capacity - 1;
    shift = 64 - Integer.numberOfTrailingZeros(capacity);
    mergedIdByRank = new int[Math.max(expectedMerges, 1)];
  }

  /** Adds the merge with the given rank; a later merge of the same pair replaces the earlier one, as in Hugging Face. */
  void put(int left, int right, int rank, int mergedId) {
    long key = pack(left, right);
    int slot = slot(key);
    while (keys[slot] != EMPTY && keys[slot] != key) {
      slot = (slot + 1) & mask;
    }
    if (keys[slot] == EMPTY) {
      keys[slot] = key;
      count++;
    }
    ranks[slot] = rank;
    mergedIdByRank[rank] = mergedId;
  }

  /** The rank of merging {@code left} and {@code right}, or -1 when no rule merges them. */
  int rank(int left, int right) {
    long key = pack(left, right);
    int slot = slot(key);
    while (true) {
      long k = keys[slot];
      if (k == key) {
        return ranks[slot];
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

  int size() {
    return count;
  }

  /** Calls {@code action} for every distinct merge rule that survived duplicates. */
  void forEach(MergeConsumer action) {
    for (int slot = 0; slot < keys.length; slot++) {
      long key = keys[slot];
      if (key != EMPTY) {
        action.accept((int) (key >>> 32), (int) key, ranks[slot]);
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
    return (int) ((key * 0x9E37_79B9_7F4A_7C15L) >>> shift) & mask;
  }
}
