package io.jemma.kv;

/** One sequence's page tables: one in the full-attention pool, one in the sliding-window pool. */
final class SequenceKv {
    final PageTable full;
    final PageTable sliding;
    /** Pages set aside at admission that this sequence may still take: [full, sliding]. */
    int reservedFull;
    int reservedSliding;
    int length;

    SequenceKv(PagePool fullPool, PagePool slidingPool) {
        this.full = new PageTable(fullPool);
        this.sliding = new PageTable(slidingPool);
    }
}
